"""Input manifests (JSONL, Parquet, CSV) on any fsspec URL, read row by row.

Reading never raises for one bad row: `iter_manifest` yields `(row_index, dict)` for a row it
could parse and `(row_index, ManifestRowError)` for one it could not, so the caller turns the
latter into a failure row and goes on. `validate_row` turns a parsed row into an `InputRow`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from typing import IO, Any

from pydantic import ValidationError

from claimdiff import ids
from claimdiff.errors import ConfigError, ManifestError, ManifestRowError
from claimdiff.io.uris import check_scheme, resolve
from claimdiff.schemas.rows import InputRow

FORMATS = ("jsonl", "parquet", "csv")
REQUIRED = ("image", "reference", "caption")
KNOWN = (*REQUIRED, "sample_id", "actor_id", "gold")
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
_EXTRA = "\x00extra"  # DictReader's key for fields beyond the header


def manifest_format(uri: str) -> str:
    name = uri.lower()
    for suffix in _COMPRESSIONS:
        name = name.removesuffix(suffix)
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise ConfigError(f"cannot tell the manifest format of {uri!r}: use .jsonl, .parquet or .csv")


def expand_manifests(pattern: str, allowed_schemes: Sequence[str]) -> list[str]:
    """The manifest files a URI or glob names, sorted; a plain URI is kept as written."""
    import fsspec

    check_scheme(pattern, allowed_schemes)
    fs, _, paths = fsspec.get_fs_token_paths(pattern)
    if not any(ch in pattern for ch in "*?["):
        if not fs.exists(paths[0]):
            raise ConfigError(f"manifest not found: {pattern}")
        return [pattern]
    if not paths:
        raise ConfigError(f"no manifest matches {pattern!r}")
    return sorted(fs.unstrip_protocol(p) if "://" in pattern else p for p in paths)


def iter_manifest(uri: str) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    """Rows of one manifest file, in order, with their 0-based index."""
    fmt = manifest_format(uri)
    if fmt == "parquet":
        yield from _iter_parquet(uri)
        return
    import fsspec

    if fmt == "jsonl":
        # binary, so one line of invalid UTF-8 is one bad row rather than an unreadable file
        with fsspec.open(uri, "rb", compression="infer") as handle:
            yield from _iter_jsonl(handle)
        return
    with fsspec.open(uri, "rt", encoding="utf-8", compression="infer", newline="") as handle:
        delimiter = "\t" if ".tsv" in uri.lower() else ","
        yield from _iter_csv(handle, delimiter)


def _iter_jsonl(handle: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    index = 0
    for line in handle:
        if not line.strip():
            continue
        try:
            value = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield index, ManifestRowError(
                f"line is not valid UTF-8: {exc.reason} at byte {exc.start}",
                raw=line.decode("utf-8", errors="replace"))
        except json.JSONDecodeError as exc:
            yield index, ManifestRowError(
                f"line is not valid JSON: {exc.msg} at column {exc.colno}", raw=line.decode())
        else:
            if isinstance(value, dict):
                yield index, value
            else:
                yield index, ManifestRowError(
                    f"line is a JSON {type(value).__name__}, not an object", raw=line.decode())
        index += 1


def _iter_csv(
    handle: io.TextIOBase, delimiter: str
) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    reader = csv.DictReader(handle, delimiter=delimiter, restkey=_EXTRA)
    try:
        for index, record in enumerate(reader):
            width = len(reader.fieldnames or [])
            if _EXTRA in record:
                yield index, ManifestRowError(
                    f"row has {width + len(record[_EXTRA])} fields, the header has {width}"
                )
            elif any(value is None for value in record.values()):
                yield index, ManifestRowError(f"row has fewer fields than the header ({width})")
            else:
                # CSV has no null: an empty optional cell means "absent"
                yield index, {
                    k: (v if v != "" or k in REQUIRED else None) for k, v in record.items()
                }
    except csv.Error as exc:
        # the reader cannot resync after this: rows past it would be lost, so stop the run
        raise ManifestError(f"CSV is unreadable at line {reader.line_num}: {exc}") from exc


def _iter_parquet(uri: str) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(uri, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        index = 0
        for batch in parquet.iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                yield index, record
                index += 1


def _text(value: Any, column: str, *, required: bool) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if required:
            raise ManifestRowError(f"column {column!r} is missing or null")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ManifestRowError(f"column {column!r} must be text, got {type(value).__name__}")
    return str(value)


def validate_row(
    record: dict[str, Any], *, manifest: str, row_index: int, allowed_schemes: Sequence[str]
) -> InputRow:
    """An `InputRow` from one parsed manifest record, or `ManifestRowError` saying why not."""
    missing = [c for c in REQUIRED if c not in record]
    if missing:
        raise ManifestRowError(f"missing required column(s): {', '.join(missing)}")
    image = _text(record["image"], "image", required=True)
    reference = _text(record["reference"], "reference", required=True)
    caption = _text(record["caption"], "caption", required=True)
    assert image is not None
    assert reference is not None
    assert caption is not None
    if not image.strip():
        raise ManifestRowError("column 'image' is empty")
    if not reference.strip():
        raise ManifestRowError("column 'reference' is empty")
    image_uri = resolve(image, manifest)
    check_scheme(image_uri, allowed_schemes)

    gold = record.get("gold")
    if isinstance(gold, float) and math.isnan(gold):
        gold = None  # pandas writes a missing object cell as NaN
    if gold is not None and not isinstance(gold, str):
        gold = json.dumps(gold)
    extra = {k: v for k, v in record.items() if k not in KNOWN}
    sample_id = _text(record.get("sample_id"), "sample_id", required=False)
    actor_id = _text(record.get("actor_id"), "actor_id", required=False)
    try:
        return InputRow(
            manifest=manifest,
            row_index=row_index,
            image=image,
            image_uri=image_uri,
            reference=reference,
            caption=caption,
            sample_id=sample_id or ids.sample_id(image, reference),
            actor_id=actor_id or ids.actor_id(caption),
            gold=gold,
            metadata=json.dumps(extra, sort_keys=True, default=str) if extra else None,
        )
    except ValidationError as exc:
        raise ManifestRowError(f"row does not validate: {exc.errors()[0]['msg']}") from exc
