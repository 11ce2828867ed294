"""The filesystem of a URI (fsspec), joining paths on it, and writing a file whole or not at
all: what every reader and writer of run folders needs."""

from __future__ import annotations

import os
import uuid

import fsspec
from fsspec.implementations.local import LocalFileSystem


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, root = fsspec.core.url_to_fs(uri)
    except ImportError as exc:  # s3fs, gcsfs, aiohttp come with claimdiff's extras
        from claimdiff.io.storage import missing_filesystem

        raise missing_filesystem(uri, exc) from exc
    return fs, root


def write_whole(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` to `path` so that readers see the whole file or none of it: a temporary name
    in the same folder, synced and renamed over on a local disk; one PUT on an object store
    (which shows the whole object or nothing)."""
    if not isinstance(fs, LocalFileSystem):
        fs.pipe_file(path, data)
        return
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
