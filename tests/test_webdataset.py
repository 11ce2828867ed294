"""WebDataset tar shards as manifests: a run over shards built here equals the run over the
same rows as JSONL, bad samples are failure rows, and a shard in a bucket works too."""

from __future__ import annotations

import io
import json
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from claimdiff.errors import ConfigError
from claimdiff.io.manifest import expand_manifests, iter_manifest
from claimdiff.synth.sample import write_sample
from tests.pipeline_support import read, run

SCHEMES = ["file", "s3"]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _shard(manifest: str, shard: Path, *, extra: bool = True) -> int:
    """The manifest's rows as one WebDataset shard (image + json per sample); the row count."""
    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_image[row["image"]].append(row)
    folder = Path(manifest).parent
    with tarfile.open(shard, "w") as tar:
        for image, group in sorted(by_image.items()):
            key = Path(image).stem
            _add(tar, f"{key}.png", (folder / image).read_bytes())
            _add(tar, f"{key}.txt", group[0]["reference"].encode())  # the reference, as text
            captions = [{"caption": r["caption"], "actor_id": r["actor_id"], "gold": r["gold"]}
                        for r in group]
            _add(tar, f"{key}.json", json.dumps({"captions": captions}).encode())
        if extra:
            _add(tar, "orphan.json", b'{"reference": "r", "caption": "c"}')  # no image
            _add(tar, "broken.png", (folder / sorted(by_image)[0]).read_bytes())
            _add(tar, "broken.json", b"{not json")
    return len(rows)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, int]:
    root = tmp_path_factory.mktemp("wds")
    manifest = write_sample(str(root / "data"), images=3, actors=3, seed=6, broken=False)
    shard = root / "shards" / "shard-00000.tar"
    shard.parent.mkdir()
    return manifest, shard, _shard(manifest, shard)


def test_rows_of_a_shard(corpus: tuple[str, Path, int]):
    _, shard, rows = corpus
    records = list(iter_manifest(str(shard)))
    ok = [r for _, r in records if isinstance(r, dict)]
    errors = [str(r) for _, r in records if not isinstance(r, dict)]
    assert len(ok) == rows
    assert ok[0]["image"] == f"tar://scene_0000.png::{shard}"
    assert ok[0]["sample_id"] == "scene_0000"
    assert ok[0]["reference"]  # from the .txt
    assert len(errors) == 2
    assert "'orphan' has no image member" in errors[0]
    assert "broken.json is not JSON" in errors[1]


def test_a_run_over_shards_equals_the_jsonl_run(corpus: tuple[str, Path, int], tmp_path: Path):
    manifest, shard, rows = corpus
    shards = run(str(shard.parent / "*.tar"), tmp_path / "wds", {"run.max_failure_share": 0.5})
    assert run(manifest, tmp_path / "jsonl").status == "ok"
    assert shards.accounting.balanced
    assert shards.accounting.rows_in == rows + 2
    assert shards.accounting.rows_failed == 2
    assert shards.accounting.failures_by_stage == {"read_manifest": 2}

    def rewards(out: Path) -> dict[tuple[str, str], Any]:
        return {(r["reference"], r["actor_id"]): (r["reward"], r["image_sha256"])
                for r in read(out, "rewards") if r["status"] == "ok"}

    assert rewards(tmp_path / "wds") == rewards(tmp_path / "jsonl")


def test_a_cut_shard_keeps_the_samples_before_the_cut(corpus: tuple[str, Path, int],
                                                      tmp_path: Path):
    _, shard, _ = corpus
    cut = tmp_path / "cut.tar"
    cut.write_bytes(shard.read_bytes()[: 3 * 1024 + 100])
    records = [r for _, r in iter_manifest(str(cut))]
    assert "ends early or is corrupt" in str(records[-1])
    not_a_tar = tmp_path / "notes.tar"
    not_a_tar.write_text("just text")
    with pytest.raises(ConfigError, match="not a readable tar shard"):
        expand_manifests(str(not_a_tar), SCHEMES)
    with pytest.raises(ConfigError, match="compressed WebDataset"):
        expand_manifests(str(tmp_path / "x.tar.gz"), SCHEMES)


@pytest.mark.slow
def test_a_shard_in_a_bucket(corpus: tuple[str, Path, int], tmp_path: Path, s3_bucket: str):
    import s3fs

    manifest, _, rows = corpus
    local = tmp_path / "clean.tar"
    _shard(manifest, local, extra=False)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().put(str(local), f"{s3_bucket}/shards/shard-00000.tar")
    result = run(f"s3://{s3_bucket}/shards/shard-00000.tar", f"s3://{s3_bucket}/runs/wds")
    assert result.status == "ok"
    assert result.accounting.rows_judged == rows


def _img2dataset(manifest: str, out: Path, layout: str) -> int:
    """The manifest's images as one img2dataset shard (`files` or `webdataset` layout), its
    Parquet with the actor captions added as `captions`, and one row it failed to fetch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_image[row["image"]].append(row)
    out.mkdir(parents=True)
    table = []
    folder = Path(manifest).parent
    tar = tarfile.open(out / "00000.tar", "w") if layout == "webdataset" else None  # noqa: SIM115
    for i, (image, group) in enumerate(sorted(by_image.items())):
        key = f"0000{i:05d}"
        data = (folder / image).read_bytes()
        if tar is not None:
            _add(tar, f"{key}.png", data)
        else:
            (out / "00000").mkdir(exist_ok=True)
            (out / "00000" / f"{key}.png").write_bytes(data)
        # joined with the captioner's output: one row per actor caption, gold labels too
        table += [{"key": key, "url": f"https://example.org/{key}.png",
                   "caption": r["reference"], "status": "success", "error_message": None,
                   "actor_caption": r["caption"], "actor_id": r["actor_id"],
                   "gold": json.dumps(r["gold"])} for r in group]
    table.append({"key": "000099999", "url": "https://example.org/gone.png", "caption": "x",
                  "status": "failed_to_download", "error_message": "HTTP 404",
                  "actor_caption": "y", "actor_id": "a", "gold": None})
    if tar is not None:
        tar.close()
    pq.write_table(pa.Table.from_pylist(table), out / "00000.parquet")
    return len(rows)


@pytest.mark.parametrize("layout", ["files", "webdataset"])
def test_an_img2dataset_shard(corpus: tuple[str, Path, int], tmp_path: Path, layout: str):
    manifest = corpus[0]
    rows = _img2dataset(manifest, tmp_path / "i2d", layout)
    result = run(str(tmp_path / "i2d" / "00000.parquet"), tmp_path / "out",
                 {"run.max_failure_share": 0.5})
    assert result.accounting.balanced
    assert result.accounting.rows_in == rows + 1
    [failure] = read(tmp_path / "out", "failures")
    assert "img2dataset did not fetch image 000099999: HTTP 404" in failure["message"]
    rewards = {(r["reference"], r["actor_id"]): (r["reward"], r["image_sha256"])
               for r in read(tmp_path / "out", "rewards") if r["status"] == "ok"}
    assert len(rewards) == rows
    plain = run(manifest, tmp_path / "jsonl")
    assert plain.accounting.rows_judged == rows
    assert rewards == {(r["reference"], r["actor_id"]): (r["reward"], r["image_sha256"])
                       for r in read(tmp_path / "jsonl", "rewards")}
