"""A judge model's identity: its content, not where it lies.

The cache key names the judge, and a path is a poor name: the same weights copied to another
machine (or another folder) would look like another judge, and weights replaced in place would
look like the same one. So a local model folder is named by a digest of its files: every file
below it (weights, config, tokenizer, chat template), by relative path and content, skipping
hidden ones (`.git`, `.cache`, editor droppings). Hashing reads every byte once per run: about
1-2 GB/s, so ~10 s for a 7B model in bf16, small against the run it names.

A hub id or a remote endpoint has no local content to read: its identity stays its name.
"""

from __future__ import annotations

import hashlib
import os

_CHUNK = 1 << 20


def folder_digest(folder: str) -> str:
    """`sha256:<hex>` over every non-hidden file below `folder` (relative path, size,
    content), in sorted order; links are followed (a hub cache's snapshot folder is links)."""
    digest = hashlib.sha256()
    files: list[str] = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(os.path.join(root, n) for n in names if not n.startswith("."))
    for path in sorted(files, key=lambda p: os.path.relpath(p, folder)):
        relative = os.path.relpath(path, folder).replace(os.sep, "/")
        digest.update(f"{relative}\0{os.path.getsize(path)}\0".encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def local_model_digest(model: str | None, loads_weights: bool) -> str | None:
    """The digest of a local model folder the judge loads; None for a hub id, a URL, or a
    judge that loads no weights here."""
    if not loads_weights or model is None or "://" in model or not os.path.isdir(model):
        return None
    return folder_digest(model)
