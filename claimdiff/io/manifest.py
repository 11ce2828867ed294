"""Input manifests (JSONL, Parquet, CSV) on any fsspec URL, read row by row.

Reading never raises for one bad row: `iter_manifest` yields `(row_index, dict)` for a row it
could parse and `(row_index, ManifestRowError)` for one it could not, so the caller turns the
latter into a failure row and goes on. `validate_row` turns a parsed row into an `InputRow`.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, cast

from pydantic import ValidationError

from claimdiff import ids
from claimdiff.errors import ConfigError, ManifestError, ManifestRowError
from claimdiff.io.uris import check_scheme, normalised, resolve
from claimdiff.schemas.rows import InputRow
from claimdiff.text import is_blank

FORMATS = ("jsonl", "parquet", "csv", "tsv")
REQUIRED = ("image", "reference", "caption")
KNOWN = (*REQUIRED, "sample_id", "actor_id", "gold")
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
_BOM = "\ufeff"
# A CSV cell may hold a whole gold label set (the csv module's default limit is 128 KiB); a
# larger cell is a bad row, and an unclosed quote does not buffer the rest of a big file.
_CSV_FIELD_LIMIT = 16 * 2**20
# The longest physical line read into memory: a longer one is one bad row, skipped unread.
MAX_LINE_BYTES = 16 * 2**20


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
    if name.endswith(".tar"):
        if compressed:
            raise ConfigError(f"{uri!r}: a compressed WebDataset shard cannot be read member by "
                              "member; write uncompressed .tar shards")
        return "webdataset"
    raise ConfigError(
        f"cannot tell the manifest format of {uri!r}: use .jsonl, .parquet, .csv, .tsv or "
        ".tar (WebDataset)")


def expand_manifests(pattern: str, allowed_schemes: Sequence[str]) -> list[str]:
    """The manifest files a URI or glob names, sorted; a plain URI is kept as written.

    Every file must have a manifest format, be a regular file and open as one (`check_manifest`):
    a glob that also matches images or notes, a folder given as the manifest, a corrupt Parquet
    footer or a CSV header that repeats a column is refused before anything runs (exit 2),
    rather than failing the whole run on a worker halfway through.
    """
    import fsspec

    check_scheme(pattern, allowed_schemes)
    try:
        fs, _, paths = fsspec.get_fs_token_paths(pattern)
    except ImportError as exc:
        from claimdiff.io.storage import missing_filesystem

        raise missing_filesystem(pattern, exc) from exc
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot read manifest {pattern}: {type(exc).__name__}: {exc}") from exc
    if not any(ch in pattern for ch in "*?["):
        found = [pattern]
    else:
        if not paths:
            raise ConfigError(f"no manifest matches {pattern!r}")
        found = sorted(fs.unstrip_protocol(p) if "://" in pattern else p for p in paths)
    for uri in found:
        check_manifest(uri)
    return found


def check_manifest(uri: str) -> None:
    """Refuse, with one line, a manifest no row of which could be read."""
    import fsspec

    manifest_format(uri)
    fs, path = fsspec.core.url_to_fs(uri)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise ConfigError(f"manifest not found: {uri}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read manifest {uri}: {type(exc).__name__}: {exc}") from exc
    if info.get("type") == "directory":
        raise ConfigError(f"manifest {uri} is a directory; name the file (or a glob inside it)")
    if info.get("type") not in (None, "file"):
        raise ConfigError(f"manifest {uri} is not a regular file ({info.get('type')})")
    if isinstance(fs, _local_fs()):
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"manifest {uri} is not a regular file (a FIFO, device or socket)")
    try:
        _check_opens(uri)
    except ManifestError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read manifest {uri}: {type(exc).__name__}: {exc}") from exc


def _local_fs() -> type:
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem


def _check_opens(uri: str) -> None:
    """What `iter_manifest` would raise before its first row: a bad footer, a bad header."""
    fmt = manifest_format(uri)
    if fmt == "parquet":
        import fsspec
        import pyarrow.parquet as pq

        with fsspec.open(uri, "rb") as handle:
            try:
                pq.ParquetFile(handle).schema_arrow  # noqa: B018 - reads and checks the footer
            except (OSError, ValueError) as exc:
                raise ManifestError(f"{uri} is not a readable Parquet file: {exc}") from exc
    elif fmt == "webdataset":
        for index, _, record in iter_manifest_lines(uri):
            if index == 0 and isinstance(record, ManifestRowError) and "after sample 0" in str(
                    record):
                raise ManifestError(f"{uri} is not a readable tar shard: {record}")
            break
    elif fmt in ("csv", "tsv"):
        for _, _, record in iter_manifest_lines(uri):
            del record  # the header was read and checked; the first row decides nothing
            break


def iter_manifest(uri: str) -> Iterator[tuple[int, dict[str, Any] | ManifestRowError]]:
    """Rows of one manifest file, in order, with their 0-based index."""
    for index, _, record in iter_manifest_lines(uri):
        yield index, record


def iter_manifest_lines(
    uri: str,
) -> Iterator[tuple[int, int, dict[str, Any] | ManifestRowError]]:
    """Rows of one manifest file, in order: (0-based row index, physical position, row).

    The position is the 1-based physical line a JSONL/CSV row starts on (what an editor shows;
    blank lines and multi-line CSV cells make it differ from the index), or the 1-based row
    number of a Parquet file. A compressed file that ends early (a cut download) keeps every row
    before the cut and yields one error for the rest.
    """
    fmt = manifest_format(uri)
    if fmt == "parquet":
        from claimdiff.io.img2dataset import adapt

        yield from adapt(_iter_parquet(uri), uri)
        return
    import fsspec

    if fmt == "webdataset":
        from claimdiff.io.webdataset import iter_webdataset

        with fsspec.open(uri, "rb") as opened:
            yield from iter_webdataset(uri, opened)
        return

    # Binary, so one line of invalid UTF-8 is one bad row rather than an unreadable file.
    zstd = uri.lower().endswith(".zst")
    with fsspec.open(uri, "rb", compression=None if zstd else "infer") as opened:
        handle: IO[bytes] = io.BufferedReader(_ZstdReader(opened)) if zstd else _buffered(opened)
        lines = _PhysicalLines(handle)
        rows = _iter_jsonl(lines) if fmt == "jsonl" else _iter_csv(
            lines, "\t" if fmt == "tsv" else ",")
        index = 0
        try:
            for index, line, record in rows:
                yield index, line, record
            return
        except _STREAM_ERRORS as exc:
            # one row for all that cannot be read: the run goes on, the accounting balances
            yield (index + 1 if lines.yielded_rows else index), lines.number + 1, ManifestRowError(
                f"line {lines.number + 1}: the file ends early or is corrupt after line "
                f"{lines.number} ({type(exc).__name__}: {exc}); the rows after that cannot be "
                "read (a truncated compressed download?)")


def _stream_errors() -> tuple[type[BaseException], ...]:
    """What decompressors raise for a cut or corrupt stream."""
    import lzma
    import zlib

    errors: list[type[BaseException]] = [EOFError, zlib.error, lzma.LZMAError, OSError]
    if importlib.util.find_spec("zstandard") is not None:  # an optional codec
        import zstandard

        errors.append(zstandard.ZstdError)
    return tuple(errors)


_STREAM_ERRORS = _stream_errors()


class _RawReader(io.RawIOBase):
    """Any file with `read(n)`, as a raw stream: object-store files (s3fs, gcsfs) are fsspec
    `AbstractBufferedFile`s whose `readline` takes no size limit, which the bounded line reader
    below needs; `io.BufferedReader` over this adapter gives it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._raw.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def _buffered(opened: Any) -> IO[bytes]:
    from fsspec.spec import AbstractBufferedFile

    if isinstance(opened, AbstractBufferedFile):
        return io.BufferedReader(_RawReader(opened), buffer_size=1 << 20)
    return cast(IO[bytes], opened)


class _ZstdReader(io.RawIOBase):
    """A zstd stream, decoded frame by frame, that raises EOFError when the input ends inside a
    frame: zstandard's own stream reader then just stops, and a cut download would read as a
    shorter, complete-looking file."""

    _CHUNK = 1 << 16

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._raw = raw
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._frame = self._new()
        self._in_frame = False
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._raw.read(self._CHUNK)
            if not chunk:
                if self._in_frame:
                    raise EOFError("the zstd stream ends inside a frame")
                return 0
            self._pending = self._feed(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _feed(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            self._in_frame = True
            out.append(self._frame.decompress(chunk))
            if not self._frame.eof:
                break
            self._in_frame = False
            chunk = self._frame.unused_data
            self._frame = self._new()
        return b"".join(out)


class _PhysicalLines:
    """The physical lines of a binary file, numbered, each at most `MAX_LINE_BYTES` long.

    A longer line is not read into memory: it is skipped to its end and stands as one bad row
    (`too_long`). `number` is the 1-based number of the last line handed out.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.number = 0
        self.yielded_rows = False

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> tuple[bytes, bool]:
        line = self._handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            return line, False
        while True:  # the rest of an over-long line, in bounded pieces, dropped
            rest = self._handle.readline(MAX_LINE_BYTES)
            if not rest or rest.endswith(b"\n"):
                return line[:200], True


def _iter_jsonl(
    lines: _PhysicalLines,
) -> Iterator[tuple[int, int, dict[str, Any] | ManifestRowError]]:
    index = 0
    for line, too_long in lines:
        number = lines.number
        if too_long:
            record: dict[str, Any] | ManifestRowError = ManifestRowError(
                f"line {number}: longer than {MAX_LINE_BYTES} bytes",
                raw=line.decode("utf-8", errors="replace"))
        elif not line.strip():
            continue
        else:
            record = _parse_json_line(line, first=number == 1, number=number)
        yield index, number, record
        lines.yielded_rows = True
        index += 1


def _parse_json_line(line: bytes, *, first: bool, number: int
                     ) -> dict[str, Any] | ManifestRowError:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ManifestRowError(
            f"line {number}: not valid UTF-8: {exc.reason} at byte {exc.start}",
            raw=line.decode("utf-8", errors="replace"))
    if first:
        text = text.removeprefix(_BOM)  # editors on Windows start files with one
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return ManifestRowError(
            f"line {number}: not valid JSON: {exc.msg} at column {exc.colno}", raw=text)
    except RecursionError:
        return ManifestRowError(f"line {number}: nested too deeply to parse", raw=text[:1000])
    if not isinstance(value, dict):
        return ManifestRowError(
            f"line {number}: a JSON {type(value).__name__}, not an object", raw=text)
    try:
        # "\ud800" is valid JSON but no valid text: it would break every encoder after this
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return ManifestRowError(
            f"line {number}: holds an unpaired surrogate escape (\\ud800-\\udfff)",
            raw=text.encode("utf-8", errors="replace").decode("utf-8"))
    return value


@dataclass(frozen=True)
class _Line:
    text: str
    problem: str | None  # "not valid UTF-8", "longer than ...", or None
    number: int


class _Lines:
    """Physical lines decoded one by one, with push-back, for the csv reader to pull.

    What it pulled for one record is kept, so a record that an unclosed quote ran on with can be
    read again from its second line.
    """

    def __init__(self, lines: _PhysicalLines) -> None:
        self._lines = lines
        self._pushed: list[_Line] = []
        self.taken: list[_Line] = []  # since the last reset

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._pushed:
            item = self._pushed.pop()
        else:
            raw, too_long = next(self._lines)
            number = self._lines.number
            problem = f"longer than {MAX_LINE_BYTES} bytes" if too_long else None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", errors="replace")
                problem = problem or "not valid UTF-8"
            if number == 1:
                text = text.removeprefix(_BOM)
            if too_long:
                text = "\n"  # an over-long line stands as one bad row, and ends here
            item = _Line(text, problem, number)
        self.taken.append(item)
        return item.text

    def reset(self) -> None:
        self.taken = []

    def push_back(self, items: list[_Line]) -> None:
        self._pushed.extend(reversed(items))


def _iter_csv(
    physical: _PhysicalLines, delimiter: str
) -> Iterator[tuple[int, int, dict[str, Any] | ManifestRowError]]:
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
    lines = _Lines(physical)

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
        repeated = sorted({name for name in header if header.count(name) > 1})
        raise ManifestError(f"CSV header repeats the column name(s) {repeated}: {header}")
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
            first = taken[0]
            yield index, first.number, ManifestRowError(
                f"line {first.number}: not valid CSV ({exc}; an unclosed quote?)",
                raw=first.text)
            physical.yielded_rows = True
            lines.push_back(taken[1:])
            rows = reader()  # a reader that raised is in no state to go on
            index += 1
            continue
        taken = lines.taken
        lines.reset()
        problem = next((line.problem for line in taken if line.problem), None)
        if not fields and problem is None:
            continue  # a blank line is not a row
        first = taken[0]
        text = "".join(line.text for line in taken)
        record: dict[str, Any] | ManifestRowError
        if len(fields) != width and len(taken) > 1:
            record = ManifestRowError(
                f"line {first.number}: row has {len(fields)} fields, the header has {width}, "
                f"and runs over {len(taken)} lines (an unclosed quote?)", raw=first.text)
            lines.push_back(taken[1:])
        elif problem is not None:
            record = ManifestRowError(f"line {first.number}: {problem}", raw=text[:1000])
        elif len(fields) != width:
            record = ManifestRowError(
                f"line {first.number}: row has {len(fields)} fields, the header has {width}",
                raw=text)
        else:
            # CSV has no null: an empty optional cell means "absent"
            record = {k: (v if v != "" or k in REQUIRED else None)
                      for k, v in zip(header, fields, strict=True)}
        yield index, first.number, record
        physical.yielded_rows = True
        index += 1


def _iter_parquet(uri: str) -> Iterator[tuple[int, int, dict[str, Any] | ManifestRowError]]:
    """Rows of a Parquet file, row group by row group; a corrupt row group costs its own rows,
    as one error row, and reading goes on with the next group."""
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(uri, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise ManifestError(f"{uri} is not a readable Parquet file: {exc}") from exc
        index = 0  # rows yielded so far (a bad group counts as one)
        first_row = 0  # the file's row number where the current group starts
        for group in range(parquet.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            records: list[dict[str, Any]] = []
            read = 0
            try:
                for batch in parquet.iter_batches(batch_size=4096, row_groups=[group]):
                    records = batch.to_pylist()
                    for record in records:
                        yield index, first_row + read + 1, record
                        index += 1
                        read += 1
            except (OSError, ValueError) as exc:
                yield index, first_row + read + 1, ManifestRowError(
                    f"row {first_row + read + 1}: the Parquet data of row group {group} is "
                    f"corrupt from here on ({' '.join(str(exc).split())[:300]}); rows "
                    f"{first_row + read + 1} to {first_row + size} cannot be read")
                index += 1
            first_row += size


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any, column: str) -> str:
    """A required text column: text only (a number where a caption belongs is not a caption)."""
    if _missing(value):
        raise ManifestRowError(f"column {column!r} is missing or null")
    if not isinstance(value, str):
        raise ManifestRowError(f"column {column!r} must be text, got {type(value).__name__}")
    return value


def _identity(value: Any, column: str) -> str | None:
    """An optional id column: text, or a whole number (ids are often integers in Parquet and
    JSON, and an integer has one spelling); never a bool, float or structure."""
    if _missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ManifestRowError(
            f"column {column!r} must be text or an integer, got {type(value).__name__}")
    text = str(value)
    if is_blank(text):
        raise ManifestRowError(f"column {column!r} is empty (only spaces or invisible "
                               "characters); leave it out for the default id")
    return text


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
    image = _text(record["image"], "image")
    reference = _text(record["reference"], "reference")
    caption = _text(record["caption"], "caption")
    if is_blank(image):
        raise ManifestRowError("column 'image' is empty (only spaces or invisible characters)")
    if is_blank(reference):
        raise ManifestRowError(
            "column 'reference' is empty (only spaces or invisible characters)")
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
    sample_id = _identity(record.get("sample_id"), "sample_id")
    actor_id = _identity(record.get("actor_id"), "actor_id")
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
