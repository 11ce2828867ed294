"""img2dataset's output as manifests: its per-shard Parquet (`00000.parquet`) names the images.

img2dataset writes, per shard, a Parquet table of what it fetched (`key`, `url`, `caption`,
`status`, `error_message`, ...) beside the images: a folder `00000/` of `KEY.jpg` files (its
`files` format) or a tar `00000.tar` of them (its `webdataset` format). A Parquet manifest
without an `image` column but with img2dataset's `key` and `status` is read as such a shard:

- the image is `00000/KEY.EXT` beside the Parquet, or `tar://KEY.EXT::00000.tar` when the shard
  is a tar (EXT: the first of jpg, png, webp that exists for the shard's first fetched key);
- the corpus `caption` is the reference; the actor caption comes from an added column
  `actor_caption` (text) or `captions` (a list: one row per caption, `actor_id` its index);
- a row img2dataset failed to fetch (`status` other than `success`) is a failure row with
  img2dataset's own `error_message`, never silently dropped;
- `sample_id` defaults to the key (img2dataset's keys are unique across shards).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from claimdiff.errors import ManifestRowError

SUFFIXES = ("jpg", "png", "webp")
Row = tuple[int, int, dict[str, Any] | ManifestRowError]


def is_img2dataset(record: dict[str, Any]) -> bool:
    return "image" not in record and "key" in record and "status" in record


def _shard_stem(uri: str) -> str:
    return uri[: -len(".parquet")] if uri.lower().endswith(".parquet") else uri


@lru_cache(maxsize=256)
def _layout(uri: str, first_key: str) -> tuple[str, str]:
    """("tar" or "files", image suffix) for one shard, probed once."""
    import fsspec

    stem = _shard_stem(uri)
    fs, tar_path = fsspec.core.url_to_fs(f"{stem}.tar")
    if fs.exists(tar_path):
        tar_fs, _ = fsspec.core.url_to_fs(f"tar://::{stem}.tar")
        members = {posixpath.basename(str(n)) for n in tar_fs.find("")}
        for suffix in SUFFIXES:
            if f"{first_key}.{suffix}" in members:
                return "tar", suffix
        return "tar", SUFFIXES[0]
    for suffix in SUFFIXES:
        _, path = fsspec.core.url_to_fs(f"{stem}/{first_key}.{suffix}")
        if fs.exists(path):
            return "files", suffix
    return "files", SUFFIXES[0]


def _image(uri: str, key: str, layout: tuple[str, str]) -> str:
    stem = _shard_stem(uri)
    kind, suffix = layout
    if kind == "tar":
        return f"tar://{key}.{suffix}::{stem}.tar"
    return f"{stem}/{key}.{suffix}"


def adapt(rows: Iterator[Row], uri: str) -> Iterator[Row]:
    """The rows of an img2dataset shard as manifest rows (re-indexed: one Parquet row may give
    several caption rows); other Parquet manifests pass through unchanged."""
    index = 0
    layout: tuple[str, str] | None = None
    for _, position, record in rows:
        if isinstance(record, ManifestRowError) or not is_img2dataset(record):
            yield index, position, record
            index += 1
            continue
        key = str(record["key"])
        if record["status"] != "success":
            reason = record.get("error_message") or record["status"]
            yield index, position, ManifestRowError(
                f"img2dataset did not fetch image {key}: {reason}")
            index += 1
            continue
        if layout is None:
            layout = _layout(uri, key)
        base = {k: v for k, v in record.items() if k not in ("captions", "actor_caption")}
        base.update(image=_image(uri, key, layout), reference=record.get("caption"))
        base["sample_id"] = record.get("sample_id") or key
        captions = record.get("captions")
        if captions is None and record.get("actor_caption") is not None:
            captions = [record["actor_caption"]]
        if not captions:
            yield index, position, ManifestRowError(
                f"img2dataset row {key}: no actor caption (add an 'actor_caption' or "
                "'captions' column beside img2dataset's 'caption', the reference)")
            index += 1
            continue
        for i, caption in enumerate(captions):
            actor = record.get("actor_id") or (str(i) if len(captions) > 1 else "0")
            yield index, position, {**base, "caption": caption, "actor_id": actor}
            index += 1
