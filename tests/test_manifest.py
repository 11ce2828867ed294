from __future__ import annotations

import csv
import json
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from claimdiff import ids
from claimdiff.errors import ConfigError, DisallowedURIError, ManifestRowError
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
    assert "fewer fields than the header" in str(rows[2][1])
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
        ({**ROW, "sample_id": True}, "'sample_id' must be text, got bool"),
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
    assert manifest_format("m.tsv") == "csv"
    with pytest.raises(ConfigError, match="cannot tell the manifest format"):
        manifest_format("m.txt")
    with pytest.raises(ConfigError, match="no manifest matches"):
        expand_manifests("memory://nothing/here/*.jsonl", SCHEMES)
    with pytest.raises(ConfigError, match="manifest not found"):
        expand_manifests("memory://nothing/here/m.jsonl", SCHEMES)
