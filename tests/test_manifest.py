from __future__ import annotations

import csv
import json
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from claimdiff import ids
from claimdiff.errors import ConfigError, DisallowedURIError, ManifestError, ManifestRowError
from claimdiff.io.manifest import expand_manifests, iter_manifest, manifest_format, validate_row
from claimdiff.io.uris import resolve, scheme_of

SCHEMES = ["file", "memory", "s3"]
ROW = {"image": "img/a.png", "reference": "A red car.", "caption": "A blue car."}


def _validate(record: dict, manifest: str = "/data/m.jsonl", index: int = 0):
    return validate_row(record, manifest=manifest, row_index=index, allowed_schemes=SCHEMES)


def test_jsonl_rows_and_malformed_lines(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(
        json.dumps(ROW).encode() + b"\n"
        + b"{not json\n"
        + b"\n"  # blank lines are not rows
        + b"[1, 2]\n"
        + b'{"image": "\xff\xfe"}\n'
        + json.dumps({**ROW, "caption": "Two cars."}).encode() + b"\n"
    )
    rows = list(iter_manifest(str(path)))
    assert [i for i, _ in rows] == [0, 1, 2, 3, 4]
    assert rows[0][1] == ROW
    assert isinstance(rows[1][1], ManifestRowError)
    assert "not valid JSON" in str(rows[1][1])
    assert rows[1][1].raw == "{not json\n"
    assert "JSON list, not an object" in str(rows[2][1])
    assert "not valid UTF-8" in str(rows[3][1])
    assert rows[4][1]["caption"] == "Two cars."


def test_csv_rows_with_wrong_widths_and_empty_optionals(tmp_path: Path):
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "reference", "caption", "actor_id", "split"])
        writer.writerow(["a.png", "A dog.", "", "", "train"])
        writer.writerow(["a.png", "A dog.", "A cat.", "p1", "train", "surplus"])
        writer.writerow(["a.png", "A dog."])
    rows = list(iter_manifest(str(path)))
    assert rows[0] == (0, {"image": "a.png", "reference": "A dog.", "caption": "",
                           "actor_id": None, "split": "train"})
    assert "6 fields, the header has 5" in str(rows[1][1])
    assert "row has 2 fields, the header has 5" in str(rows[2][1])
    row = _validate(rows[0][1], manifest=str(path))
    assert row.caption == ""
    assert row.actor_id == ids.actor_id("")
    assert json.loads(row.metadata or "") == {"split": "train"}


def test_parquet_manifest_with_nested_gold(tmp_path: Path):
    path = tmp_path / "m.parquet"
    gold = {"differences": [], "overall": "tie"}
    pq.write_table(pa.Table.from_pylist([{**ROW, "gold": gold, "score": 1.5}]), path)
    [(index, record)] = list(iter_manifest(str(path)))
    row = _validate(record, manifest=str(path))
    assert index == 0
    assert json.loads(row.gold or "") == gold
    assert json.loads(row.metadata or "") == {"score": 1.5}


def test_memory_manifest_and_relative_images():
    with fsspec.open("memory://bucket/data/m.jsonl", "w") as handle:
        handle.write(json.dumps(ROW) + "\n")
    assert expand_manifests("memory://bucket/data/*.jsonl", SCHEMES) == [
        "memory:///bucket/data/m.jsonl"]
    manifests = expand_manifests("memory://bucket/data/m.jsonl", SCHEMES)
    assert manifests == ["memory://bucket/data/m.jsonl"]
    [(_, record)] = list(iter_manifest(manifests[0]))
    row = _validate(record, manifest=manifests[0])
    assert row.image_uri == "memory://bucket/data/img/a.png"
    assert row.sample_id == ids.sample_id("img/a.png", "A red car.")


def test_default_sample_ids_follow_the_image_as_written():
    """Ids survive moving a dataset; `./img/a.png` and `img/a.png` are one image; rows of two
    manifests stay apart by (manifest, row_index) even where their ids agree."""
    first = _validate(ROW, manifest="/data/v1/m.jsonl")
    moved = _validate(ROW, manifest="/mnt/copy/m.jsonl")
    assert first.sample_id == moved.sample_id
    assert first.image_uri != moved.image_uri
    dotted = _validate({**ROW, "image": "./img/x/../a.png"}, manifest="/data/v1/m.jsonl")
    assert dotted.sample_id == first.sample_id
    assert (first.manifest, first.row_index) != (moved.manifest, moved.row_index)


def test_resolution_and_schemes():
    assert resolve("x/../a.png", "/data/sub/m.jsonl") == "/data/sub/a.png"
    assert resolve("/abs/a.png", "/data/m.jsonl") == "/abs/a.png"
    assert resolve("s3://b/k.png", "/data/m.jsonl") == "s3://b/k.png"
    assert resolve("a.png", "s3://b/p/m.jsonl") == "s3://b/p/a.png"
    assert scheme_of("HTTPS://x/y") == "https"
    assert scheme_of("/a/b") == "file"
    with pytest.raises(DisallowedURIError, match="'https' is not allowed"):
        _validate({**ROW, "image": "https://example.invalid/a.png"})


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"image": "a.png", "reference": "A dog."}, "missing required column(s): caption"),
        ({**ROW, "reference": None}, "'reference' is missing or null"),
        ({**ROW, "reference": "  "}, "'reference' is empty"),
        ({**ROW, "image": ""}, "'image' is empty"),
        ({**ROW, "caption": ["a", "list"]}, "'caption' must be text, got list"),
        ({**ROW, "sample_id": True}, "'sample_id' must be text or an integer, got bool"),
        ({**ROW, "sample_id": 1.5}, "'sample_id' must be text or an integer, got float"),
        ({**ROW, "actor_id": "\u200b"}, "'actor_id' is empty"),
        # lax types that would silently become other values
        ({**ROW, "caption": 42}, "'caption' must be text, got int"),
        ({**ROW, "reference": 3.5}, "'reference' must be text, got float"),
        ({**ROW, "caption": True}, "'caption' must be text, got bool"),
        ({**ROW, "image": 7}, "'image' must be text, got int"),
        ({**ROW, "caption": {"text": "a dog"}}, "'caption' must be text, got dict"),
        # text that shows nothing is empty, whatever its length
        *(({**ROW, "reference": blank}, "'reference' is empty") for blank in (
            "\u200b\u200c\u200d", "\ufeff", "\u2060\u2061", "\u3164", "\u00a0\u2003\u3000",
            "\u0301\u0302", "\u2800", "\u202e\u202d", "\u180e", "\t\n\r\x0b\x0c")),
        ({**ROW, "image": "\u200b"}, "'image' is empty"),
    ],
)
def test_invalid_rows_say_why(record: dict, message: str):
    with pytest.raises(ManifestRowError) as info:
        _validate(record)
    assert message in str(info.value)


def test_explicit_ids_and_defaults():
    row = _validate({**ROW, "sample_id": 17, "actor_id": "policy-3"}, index=5)
    assert (row.sample_id, row.actor_id, row.row_index) == ("17", "policy-3", 5)
    assert _validate(ROW).sample_id == _validate({**ROW, "caption": "x"}).sample_id
    assert _validate(ROW).actor_id != _validate({**ROW, "caption": "x"}).actor_id


def test_format_detection():
    assert manifest_format("s3://b/m.jsonl.gz") == "jsonl"
    assert manifest_format("m.PARQUET") == "parquet"
    assert manifest_format("m.tsv") == "tsv"
    assert manifest_format("s3://b/x.tsv.d/m.csv") == "csv"
    with pytest.raises(ConfigError, match="cannot tell the manifest format"):
        manifest_format("m.txt")
    with pytest.raises(ConfigError, match="compressed Parquet"):
        manifest_format("m.parquet.gz")
    with pytest.raises(ConfigError, match="no manifest matches"):
        expand_manifests("memory://nothing/here/*.jsonl", SCHEMES)
    with pytest.raises(ConfigError, match="manifest not found"):
        expand_manifests("memory://nothing/here/m.jsonl", SCHEMES)


def test_csv_unclosed_quote_loses_no_row(tmp_path: Path):
    """A quote that never closes would swallow every line after it into one field; the reader
    reports the line it opened on and reads on from the next line."""
    path = tmp_path / "m.csv"
    path.write_text('image,reference,caption\n'
                    'a.png,A dog.,One dog.\n'
                    'a.png,"A dog.,broken quote\n'
                    'b.png,A cat.,One cat.\n'
                    'c.png,"A bird\nin flight.",One bird.\n'  # a legitimate multi-line cell
                    'd.png,A fish.,One fish.\n')
    rows = list(iter_manifest(str(path)))
    assert [i for i, _ in rows] == [0, 1, 2, 3, 4]
    assert rows[0][1]["caption"] == "One dog."
    assert "an unclosed quote?" in str(rows[1][1])
    assert rows[1][1].raw == 'a.png,"A dog.,broken quote\n'
    assert [rows[i][1]["image"] for i in (2, 3, 4)] == ["b.png", "c.png", "d.png"]
    assert rows[3][1]["reference"] == "A bird\nin flight."


@pytest.mark.parametrize("tail", [
    'b.png,A cat.,One cat.\nc.png,"quoted",One fish.\nd.png,A bird.,One bird.\n',  # closes later
    'b.png,A cat.,One cat.\nc.png,A fish.,One fish.\nd.png,A bird.,One bird.\n',   # never closes
])
def test_csv_stray_quote_cannot_merge_rows(tmp_path: Path, tail: str):
    """A stray quote "closed" by a later cell's quote would merge the lines between into one
    row of the right width; strict parsing stops there and reading goes on from the next line."""
    path = tmp_path / "m.csv"
    path.write_text('image,reference,caption\na.png,"unclosed ref,One dog.\n' + tail)
    rows = list(iter_manifest(str(path)))
    assert "not valid CSV" in str(rows[0][1])
    assert rows[0][1].raw == 'a.png,"unclosed ref,One dog.\n'
    assert [r["image"] for _, r in rows[1:]] == ["b.png", "c.png", "d.png"]
    assert [i for i, _ in rows] == [0, 1, 2, 3]


def test_csv_bom_bad_bytes_big_cells_and_blank_lines(tmp_path: Path):
    path = tmp_path / "m.csv"
    big = "x" * 200_000  # over the csv module's default field limit (128 KiB)
    huge = "y" * (16 * 2**20 + 1)  # over claimdiff's: a bad row, not a stopped run
    path.write_bytes("\ufeffimage,reference,caption\n".encode()
                     + b"a.png,A dog.,\xff\xfe\n"
                     + b"\n"
                     + f"a.png,A dog.,{big}\n".encode()
                     + f"a.png,A dog.,{huge}\n".encode()
                     + b"b.png,A cat.,One cat.\n")
    rows = list(iter_manifest(str(path)))
    assert "not valid UTF-8" in str(rows[0][1])
    assert rows[1][1]["caption"] == big
    assert "line 5: longer than 16777216 bytes" in str(rows[2][1])
    assert rows[3] == (3, {"image": "b.png", "reference": "A cat.", "caption": "One cat."})


def test_tsv_and_repeated_header(tmp_path: Path):
    path = tmp_path / "m.tsv"
    path.write_text("image\treference\tcaption\na.png\tA dog, sitting.\tOne dog.\n")
    assert next(iter(iter_manifest(str(path))))[1]["reference"] == "A dog, sitting."
    repeated = tmp_path / "r.csv"
    repeated.write_text("image,caption,caption\na.png,x,y\n")
    with pytest.raises(ManifestError, match=r"repeats the column name\(s\) \['caption'\]"):
        list(iter_manifest(str(repeated)))
    # ... and is refused before any run starts
    with pytest.raises(ConfigError, match="repeats the column name"):
        expand_manifests(str(repeated), SCHEMES)


def test_jsonl_hostile_lines_are_row_errors(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    path.write_bytes("\ufeff".encode() + json.dumps(ROW).encode() + b"\n"
                     + b'{"image": "a.png", "reference": "\\ud800", "caption": "x"}\n'
                     + b"[" * 100_000 + b"\n"
                     + json.dumps(ROW).encode() + b"\n")
    rows = list(iter_manifest(str(path)))
    assert rows[0][1] == ROW  # the BOM is not part of the first key
    assert "unpaired surrogate" in str(rows[1][1])
    assert "nested too deeply" in str(rows[2][1])
    assert rows[3][1] == ROW


def test_text_bounds_and_unserialisable_gold():
    with pytest.raises(ManifestRowError, match=r"over manifest\.max_text_chars=10"):
        validate_row({**ROW, "caption": "x" * 11}, manifest="/d/m.jsonl", row_index=0,
                     allowed_schemes=SCHEMES, max_text_chars=10)
    with pytest.raises(ManifestRowError, match="'gold' is not JSON data"):
        _validate({**ROW, "gold": {"differences": b"\x00"}})


def test_globs_only_match_manifests(tmp_path: Path):
    (tmp_path / "m.jsonl").write_text(json.dumps(ROW) + "\n")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"cannot tell the manifest format of .*a\.png"):
        expand_manifests(str(tmp_path / "*"), SCHEMES)
    assert expand_manifests(str(tmp_path / "*.jsonl"), SCHEMES) == [str(tmp_path / "m.jsonl")]


def _compressed(tmp_path: Path, suffix: str, lines: int) -> bytes:
    import bz2
    import gzip
    import lzma

    import zstandard

    data = b"".join(json.dumps({**ROW, "caption": f"cap {i}"}).encode() + b"\n"
                    for i in range(lines))
    return {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
            ".zst": zstandard.ZstdCompressor().compress}[suffix](data)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_truncated_compressed_manifest_keeps_rows_before_the_cut(tmp_path: Path, suffix: str):
    whole = _compressed(tmp_path, suffix, 40_000)  # bz2 decodes 900 kB blocks whole
    path = tmp_path / f"m.jsonl{suffix}"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    rows = list(iter_manifest(str(path)))
    *good, last = rows
    assert good, "the rows before the cut are kept"
    assert [i for i, _ in rows] == list(range(len(rows)))
    assert all(r["caption"] == f"cap {i}" for i, r in good)
    assert isinstance(last[1], ManifestRowError)
    assert f"after line {len(good)}" in str(last[1])
    assert "truncated" in str(last[1])


def test_jsonl_messages_name_the_physical_line(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(json.dumps(ROW).encode() + b"\n\n\n{broken\n")
    rows = list(iter_manifest(str(path)))
    assert rows[1][0] == 1
    assert str(rows[1][1]).startswith("line 4: not valid JSON")


def test_an_over_long_jsonl_line_is_one_row_and_is_not_held(tmp_path: Path):
    from claimdiff.io import manifest as manifest_module

    path = tmp_path / "m.jsonl"
    path.write_bytes(json.dumps(ROW).encode() + b"\n" + b"x" * (3 * 2**20) + b"\n"
                     + json.dumps(ROW).encode() + b"\n")
    original = manifest_module.MAX_LINE_BYTES
    manifest_module.MAX_LINE_BYTES = 2**20
    try:
        rows = list(iter_manifest(str(path)))
    finally:
        manifest_module.MAX_LINE_BYTES = original
    assert [type(r).__name__ for _, r in rows] == ["dict", "ManifestRowError", "dict"]
    assert "line 2: longer than 1048576 bytes" in str(rows[1][1])


def test_corrupt_parquet_is_refused_before_the_run(tmp_path: Path):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pylist([ROW] * 3), path)
    data = path.read_bytes()
    path.write_bytes(data[:-12] + b"\x00" * 12)  # footer length and magic gone
    with pytest.raises(ConfigError, match="not a readable Parquet file"):
        expand_manifests(str(path), SCHEMES)


def test_corrupt_parquet_pages_cost_the_rows_from_there(tmp_path: Path):
    path = tmp_path / "m.parquet"
    rows = [{**ROW, "caption": f"caption number {i} " * 20} for i in range(3000)]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=1000, compression="none")
    data = bytearray(path.read_bytes())
    footer = pq.ParquetFile(path).metadata
    start = footer.row_group(2).column(2).data_page_offset  # caption pages of the third group
    data[start:start + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    read = list(iter_manifest(str(path)))
    assert all(isinstance(r, dict) for _, r in read[:2000])
    assert len(read) == 2001
    assert "row group 2 is corrupt from here on" in str(read[2000][1])
    assert "rows 2001 to 3000" in str(read[2000][1])
    assert [i for i, _ in read] == list(range(2001))


@pytest.mark.parametrize("make", ["directory", "fifo", "missing", "glob-with-folder"])
def test_manifests_that_are_not_files_are_refused(tmp_path: Path, make: str):
    import os

    path = tmp_path / "m.jsonl"
    pattern = str(path)
    if make == "directory":
        path.mkdir()
        message = "is a directory"
    elif make == "fifo":
        os.mkfifo(path)
        message = "not a regular file"
    elif make == "missing":
        message = "manifest not found"
    else:
        (tmp_path / "sub.jsonl").mkdir()  # a glob matches files only
        pattern = str(tmp_path / "*.jsonl")
        message = "no manifest matches"
    with pytest.raises(ConfigError, match=message):
        expand_manifests(pattern, SCHEMES)
