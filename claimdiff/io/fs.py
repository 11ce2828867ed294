"""The filesystem of a URI (fsspec), and joining paths on it: the two things every reader and
writer of run folders needs."""

from __future__ import annotations

import fsspec


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(uri)
    return fs, root
