"""WebDataset tar shards as manifests: one sample = the adjacent members sharing a key.

A shard `shard-00000.tar` holds, per sample, `KEY.jpg` (or .png, .webp, ...), `KEY.json` and
optionally `KEY.txt` (the WebDataset convention: the key is the member name up to its first
dot; a sample's members are adjacent). The JSON holds the manifest columns: `caption` (the
actor caption) or `captions` (several: strings, or objects with `caption` and `actor_id`: one
row each), `reference`, and optionally `sample_id`, `actor_id`, `gold`, and anything else
(kept as metadata). Where the JSON has no `reference`, the `.txt` is the reference (as in
LAION-style shards, whose text is the corpus caption). `sample_id` defaults to the key.

The image stays in the shard: a row's image is the fsspec URL `tar://KEY.jpg::SHARD`, which
the image loader opens like any other URL (fsspec indexes a shard once per process); scheme
checks apply to the shard's own scheme. Reading the rows streams the shard once; loading the
images reads their members again (ranged reads on an object store).

Only uncompressed `.tar` shards: a compressed tar cannot be read member by member.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from typing import IO, Any

from claimdiff.errors import ManifestRowError

IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
MAX_META_BYTES = 1 << 20  # a sample's json/txt; larger is one bad row, never read whole


def member_uri(member: str, shard: str) -> str:
    return f"tar://{member}::{shard}"


def _split(name: str) -> tuple[str, str]:
    folder, _, base = name.rpartition("/")
    stem, _, suffix = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), suffix.lower()


def _samples(handle: IO[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, {suffix: bytes or member name}) per sample, in shard order."""
    key: str | None = None
    parts: dict[str, Any] = {}
    with tarfile.open(fileobj=handle, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            sample, suffix = _split(member.name)
            if sample != key:
                if key is not None:
                    yield key, parts
                key, parts = sample, {}
            if suffix in IMAGE_SUFFIXES:
                parts.setdefault("image", member.name)
            elif suffix in ("json", "txt"):
                if member.size > MAX_META_BYTES:
                    parts[suffix] = ManifestRowError(
                        f"{member.name}: larger than {MAX_META_BYTES} bytes")
                    continue
                extracted = tar.extractfile(member)
                parts[suffix] = extracted.read() if extracted is not None else b""
    if key is not None:
        yield key, parts


def _records(shard: str, key: str, parts: dict[str, Any]
             ) -> list[dict[str, Any] | ManifestRowError]:
    for suffix in ("json", "txt"):
        if isinstance(parts.get(suffix), ManifestRowError):
            return [parts[suffix]]
    if "image" not in parts:
        suffixes = ", ".join(IMAGE_SUFFIXES)
        return [ManifestRowError(f"sample {key!r} has no image member ({suffixes})")]
    fields: Any = {}
    if "json" in parts:
        try:
            fields = json.loads(parts["json"].decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return [ManifestRowError(f"sample {key!r}: {key}.json is not JSON: {exc}")]
        if not isinstance(fields, dict):
            return [ManifestRowError(f"sample {key!r}: {key}.json is not a JSON object")]
    if "reference" not in fields and "txt" in parts:
        try:
            fields["reference"] = parts["txt"].decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            return [ManifestRowError(f"sample {key!r}: {key}.txt is not UTF-8: {exc}")]
    base = {**fields, "image": member_uri(parts["image"], shard)}
    base.setdefault("sample_id", key)
    captions = base.pop("captions", None)
    if captions is None:
        return [base]
    if not isinstance(captions, list) or not captions:
        return [ManifestRowError(f"sample {key!r}: 'captions' is not a non-empty list")]
    rows: list[dict[str, Any] | ManifestRowError] = []
    for i, item in enumerate(captions):
        if isinstance(item, str):
            rows.append({**base, "caption": item, "actor_id": base.get("actor_id") or str(i)})
        elif isinstance(item, dict) and isinstance(item.get("caption"), str):
            rows.append({**base, **item})
        else:
            rows.append(ManifestRowError(f"sample {key!r}: captions[{i}] is neither a string "
                                         "nor an object with a 'caption'"))
    return rows


def iter_webdataset(shard: str, handle: IO[bytes]
                    ) -> Iterator[tuple[int, int, dict[str, Any] | ManifestRowError]]:
    """(row index, 1-based sample number, record) for every row of one shard."""
    index = 0
    number = 0
    try:
        for number, (key, parts) in enumerate(_samples(handle), start=1):
            for record in _records(shard, key, parts):
                yield index, number, record
                index += 1
    except (tarfile.TarError, EOFError, OSError) as exc:
        yield index, number + 1, ManifestRowError(
            f"sample {number + 1}: the shard ends early or is corrupt after sample {number} "
            f"({type(exc).__name__}: {exc}); the samples after that cannot be read")
