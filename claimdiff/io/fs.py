"""The filesystem of a URI (fsspec), and joining paths on it: the two things every reader and
writer of run folders needs."""

from __future__ import annotations

import fsspec


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, root = fsspec.core.url_to_fs(uri)
    except ImportError as exc:  # s3fs, gcsfs, aiohttp come with claimdiff's extras
        from claimdiff.io.storage import missing_filesystem

        raise missing_filesystem(uri, exc) from exc
    return fs, root
