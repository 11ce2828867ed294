"""Input manifests (JSONL, Parquet, CSV) on any fsspec URL, read row by row.

Reading never raises for one bad row: `iter_manifest` yields `(row_index, dict)` for a row it
could parse and `(row_index, ManifestRowError)` for one it could not, so the caller turns the
latter into a failure row and goes on. `validate_row` turns a parsed row into an `InputRow`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from typing import IO, Any

from pydantic import ValidationError

from claimdiff import ids
from claimdiff.errors import ConfigError, ManifestError, ManifestRowError
from claimdiff.io.uris import check_scheme, normalised, resolve
from claimdiff.schemas.rows import InputRow

FORMATS = ("jsonl", "parquet", "csv", "tsv")
REQUIRED = ("image", "reference", "caption")
KNOWN = (*REQUIRED, "sample_id", "actor_id", "gold")
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
_BOM = "\ufeff"
# A CSV cell may hold a whole gold label set (the csv module's default limit is 128 KiB); a
# larger cell is a bad row, and an unclosed quote does not buffer the rest of a big file.
_CSV_FIELD_LIMIT = 16 * 2**20


def manifest_format(uri: str) -> str:
    """`jsonl`, `parquet`, `csv` or `tsv`, from the file name (after a compression suffix)."""
    name = uri.lower()
    compressed = name.endswith(_COMPRESSIONS)
    for suffix in _COMPRESSIONS:
        name = name.removesuffix(suffix)
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        if compressed:
            raise ConfigError(
                f"{uri!r}: a compressed Parquet file is not supported (Parquet compresses its "
                "own pages; write it with compression='zstd' instead)")
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".tsv"):
        return "tsv"
    raise ConfigError(
        f"cannot tell the manifest format of {uri!r}: use .jsonl, .parquet, .csv or .tsv")


def expand_manifests(pattern: str, allowed_schemes: Sequence[str]) -> list[str]:
    """The manifest files a URI or glob names, sorted; a plain URI is kept as written.

    Every file must have a manifest format: a glob that also matches images or notes is
    refused before anything runs, rather than failing on a worker halfway through.
    """
    import fsspec

    check_scheme(pattern, allowed_schemes)
    fs, _, paths = fsspec.get_fs_token_paths(pattern)
    if not any(ch in pattern for ch in "*?["):
        if not fs.exists(paths[0]):
            raise ConfigError(f"manifest not found: {pattern}")
        manifest_format(pattern)
        return [pattern]
    if not paths:
        raise ConfigError(f"no manifest matches {pattern!r}")
    found = sorted(fs.unstrip_protocol(p) if "://" in pattern else p for p in paths)
    for uri in found:
        manifest_format(uri)
    return found


def iter_manifest(uri: str) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    """Rows of one manifest file, in order, with their 0-based index."""
    fmt = manifest_format(uri)
    if fmt == "parquet":
        yield from _iter_parquet(uri)
        return
    import fsspec

    # Binary, so one line of invalid UTF-8 is one bad row rather than an unreadable file.
    with fsspec.open(uri, "rb", compression="infer") as handle:
        if fmt == "jsonl":
            yield from _iter_jsonl(handle)
        else:
            yield from _iter_csv(handle, "\t" if fmt == "tsv" else ",")


def _iter_jsonl(handle: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    index = 0
    for number, line in enumerate(handle):
        if not line.strip():
            continue
        yield index, _parse_json_line(line, first=number == 0)
        index += 1


def _parse_json_line(line: bytes, *, first: bool) -> dict[str, Any] | ManifestRowError:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ManifestRowError(f"line is not valid UTF-8: {exc.reason} at byte {exc.start}",
                                raw=line.decode("utf-8", errors="replace"))
    if first:
        text = text.removeprefix(_BOM)  # editors on Windows start files with one
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return ManifestRowError(f"line is not valid JSON: {exc.msg} at column {exc.colno}",
                                raw=text)
    except RecursionError:
        return ManifestRowError("line is nested too deeply to parse", raw=text[:1000])
    if not isinstance(value, dict):
        return ManifestRowError(f"line is a JSON {type(value).__name__}, not an object", raw=text)
    try:
        # "\ud800" is valid JSON but no valid text: it would break every encoder after this
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return ManifestRowError("line holds an unpaired surrogate escape (\\ud800-\\udfff)",
                                raw=text.encode("utf-8", errors="replace").decode("utf-8"))
    return value


class _Lines:
    """The physical lines of a binary text file, decoded one by one, with push-back.

    The csv reader pulls lines through this; what it pulled for one record is kept, so a record
    that an unclosed quote ran on with can be read again from its second line.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = iter(handle)
        self._pushed: list[tuple[str, bool]] = []
        self._first = True
        self.taken: list[tuple[str, bool]] = []  # (text, decoded cleanly) since the last reset

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._pushed:
            item = self._pushed.pop()
        else:
            raw = next(self._handle)
            try:
                item = (raw.decode("utf-8"), True)
            except UnicodeDecodeError:
                item = (raw.decode("utf-8", errors="replace"), False)
            if self._first:
                item = (item[0].removeprefix(_BOM), item[1])
                self._first = False
        self.taken.append(item)
        return item[0]

    def reset(self) -> None:
        self.taken = []

    def push_back(self, items: list[tuple[str, bool]]) -> None:
        self._pushed.extend(reversed(items))


def _iter_csv(
    handle: IO[bytes], delimiter: str
) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    """Rows of a CSV/TSV file; a broken row costs that row only.

    A quote that never closes would swallow the lines after it into one field (the csv module
    alone then yields one long row, or a valid-looking one when a later quote happens to close
    it). The reader runs in strict mode, which stops at a quote that closes mid-field or at the
    end of the file; then, and for a row of the wrong width that runs over several lines, the
    row's first line is reported and reading goes on from its second line. (A legitimate
    multi-line cell in a row of the wrong width is then reported as more than one bad row: it is
    malformed either way, and no line is left out.)
    """
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    lines = _Lines(handle)

    def reader() -> Iterator[list[str]]:
        return csv.reader(lines, delimiter=delimiter, strict=True)

    rows = reader()
    try:
        header = next(rows, None)
    except csv.Error as exc:
        raise ManifestError(f"CSV header is unreadable: {exc}") from exc
    if header is None:
        return
    if len(set(header)) != len(header):
        raise ManifestError(f"CSV header repeats a column name: {header}")
    width = len(header)
    index = 0
    lines.reset()
    while True:
        try:
            fields = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            taken = lines.taken
            lines.reset()
            yield index, ManifestRowError(
                f"row is not valid CSV ({exc}; an unclosed quote?)", raw=taken[0][0])
            lines.push_back(taken[1:])
            rows = reader()  # a reader that raised is in no state to go on
            index += 1
            continue
        taken, clean = lines.taken, all(ok for _, ok in lines.taken)
        lines.reset()
        if not fields:
            continue  # a blank line is not a row
        if len(fields) != width and len(taken) > 1:
            yield index, ManifestRowError(
                f"row has {len(fields)} fields, the header has {width}, and runs over "
                f"{len(taken)} lines (an unclosed quote?)", raw=taken[0][0])
            lines.push_back(taken[1:])
        elif not clean:
            yield index, ManifestRowError("line is not valid UTF-8",
                                          raw="".join(text for text, _ in taken))
        elif len(fields) != width:
            yield index, ManifestRowError(
                f"row has {len(fields)} fields, the header has {width}",
                raw="".join(text for text, _ in taken))
        else:
            # CSV has no null: an empty optional cell means "absent"
            yield index, {k: (v if v != "" or k in REQUIRED else None)
                          for k, v in zip(header, fields, strict=True)}
        index += 1


def _iter_parquet(uri: str) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(uri, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise ManifestError(f"{uri} is not a readable Parquet file: {exc}") from exc
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
    record: dict[str, Any],
    *,
    manifest: str,
    row_index: int,
    allowed_schemes: Sequence[str],
    max_text_chars: int | None = None,
) -> InputRow:
    """An `InputRow` from one parsed manifest record, or `ManifestRowError` saying why not.

    The default `sample_id` hashes the image URI as written (normalised: `./a.png` is `a.png`)
    with the reference, so it survives moving or re-mounting a dataset (and a gold manifest
    copied elsewhere still joins its run). Two manifests of one glob that name different images
    by the same relative path *and* give them the same reference would share it: such layouts
    give `sample_id` explicitly. Rows are told apart by (manifest, row_index) regardless.
    """
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
    if max_text_chars is not None:
        for column, text in (("reference", reference), ("caption", caption)):
            if len(text) > max_text_chars:
                raise ManifestRowError(
                    f"column {column!r} has {len(text)} characters, over "
                    f"manifest.max_text_chars={max_text_chars}")
    image_uri = resolve(image, manifest)
    check_scheme(image_uri, allowed_schemes)

    gold = record.get("gold")
    if isinstance(gold, float) and math.isnan(gold):
        gold = None  # pandas writes a missing object cell as NaN
    if gold is not None and not isinstance(gold, str):
        try:
            gold = json.dumps(gold)
        except (TypeError, ValueError) as exc:
            raise ManifestRowError(f"column 'gold' is not JSON data: {exc}") from exc
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
            sample_id=sample_id or ids.sample_id(normalised(image), reference),
            actor_id=actor_id or ids.actor_id(caption),
            gold=gold,
            metadata=json.dumps(extra, sort_keys=True, default=str) if extra else None,
        )
    except ValidationError as exc:
        raise ManifestRowError(f"row does not validate: {exc.errors()[0]['msg']}") from exc
