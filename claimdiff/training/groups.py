"""A run's `rewards/` rows, grouped by sample (one image with one reference), in bounded memory.

The training exports are joins within a sample: pairs of its captions, weights relative to its
mean reward, one RL prompt per sample. `rewards/` shards are not ordered by sample, so the rows
are hash-partitioned by `sample_id`: a run of up to `bucket_rows` rows is grouped in memory in
one pass; a larger one is first spilled to `ceil(rows / bucket_rows)` local Parquet buckets (one
streaming pass over the shards, record batch by record batch), then each bucket is grouped on
its own. Memory holds one bucket's texts (never the judge's raw answers or statistics, which are
not read), plus one sample's image at a time. This is plain pyarrow rather than a Beam job: the
join is small and local per sample, and a single machine streams tens of millions of rows this
way; a sample is the unit of every output row, so the partitioning never splits one.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from claimdiff.config import ImageConfig
from claimdiff.errors import ConfigError, ImageError
from claimdiff.io.datasets import filesystem, has_dataset, num_rows, shards
from claimdiff.io.images import read_bytes
from claimdiff.training.formats import HFImage

REWARDS = "rewards"
COLUMNS = ["run_id", "sample_id", "actor_id", "manifest", "row_index", "image", "image_uri",
           "caption", "reference", "status", "rewards", "image_sha256"]
DEFAULT_BUCKET_ROWS = 200_000


@dataclass(frozen=True)
class CaptionRow:
    """One `rewards/` row as the exports see it."""

    manifest: str
    row_index: int
    actor_id: str
    caption: str
    ok: bool
    rewards: dict[str, float]
    image_sha256: str | None

    def reward(self, preset: str) -> float | None:
        """The preset's value; None for a failed row or a value that is not a finite number."""
        value = self.rewards.get(preset) if self.ok else None
        if value is None or not math.isfinite(value):
            return None
        return value


@dataclass
class SampleGroup:
    """Every `rewards/` row of one sample, in (manifest, row index) order."""

    sample_id: str
    run_id: str
    image: str
    image_uri: str
    reference: str
    rows: list[CaptionRow] = field(default_factory=list)
    consistent: bool = True  # one image and one reference across its rows

    def image_sha256(self) -> str | None:
        return next((r.image_sha256 for r in self.rows if r.image_sha256), None)


def run_presets(run: str) -> list[str]:
    """The preset names found on the run's first ok row (every ok row carries all of them)."""
    fs, _ = filesystem(run)
    for path in shards(run, REWARDS):
        with fs.open(path, "rb") as handle:
            table = pq.ParquetFile(handle).read(columns=["status", "rewards"])
        for status, rewards in zip(table.column("status").to_pylist(),
                                   table.column("rewards").to_pylist(), strict=True):
            if status == "ok":
                return [r["name"] for r in rewards]
    return []


def check_run(run: str) -> int:
    """The number of `rewards/` rows; a folder without them is a usage error."""
    if not has_dataset(run, REWARDS) or not shards(run, REWARDS):
        raise ConfigError(
            f"{run} holds no rewards/ shards: pass the --output folder of a judge run")
    return num_rows(run, REWARDS)


def _bucket_of(sample_id: str, buckets: int) -> int:
    return zlib.crc32(sample_id.encode("utf-8")) % buckets


def _batches(run: str) -> Iterator[pa.RecordBatch]:
    fs, _ = filesystem(run)
    for path in shards(run, REWARDS):
        with fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            present = [c for c in COLUMNS if c in parquet.schema_arrow.names]
            yield from parquet.iter_batches(columns=present, batch_size=8192)


def _group(records: list[dict[str, Any]]) -> list[SampleGroup]:
    groups: dict[str, SampleGroup] = {}
    for rec in records:
        sample = rec["sample_id"]
        group = groups.get(sample)
        if group is None:
            group = groups[sample] = SampleGroup(
                sample_id=sample, run_id=rec["run_id"], image=rec.get("image") or rec["image_uri"],
                image_uri=rec["image_uri"], reference=rec.get("reference") or "")
        elif (rec["image_uri"], rec.get("reference") or "") != (group.image_uri, group.reference):
            group.consistent = False
        group.rows.append(CaptionRow(
            manifest=rec["manifest"], row_index=rec["row_index"], actor_id=rec["actor_id"],
            caption=rec.get("caption") or "", ok=rec["status"] == "ok",
            rewards={r["name"]: r["value"] for r in rec["rewards"] or []},
            image_sha256=rec.get("image_sha256")))
    for group in groups.values():
        group.rows.sort(key=lambda r: (r.manifest, r.row_index))
    return [groups[s] for s in sorted(groups)]


def iter_groups(run: str, bucket_rows: int = DEFAULT_BUCKET_ROWS) -> Iterator[SampleGroup]:
    """Every sample of the run, in a deterministic order (bucket, then sample id)."""
    total = check_run(run)
    buckets = max(1, math.ceil(total / bucket_rows))
    if buckets == 1:
        records = [rec for batch in _batches(run) for rec in batch.to_pylist()]
        yield from _group(records)
        return
    with tempfile.TemporaryDirectory(prefix="claimdiff-groups-") as tmp:
        writers: dict[int, pq.ParquetWriter] = {}
        try:
            for batch in _batches(run):
                table = pa.Table.from_batches([batch])
                ids = table.column("sample_id").to_pylist()
                keys = pa.array([_bucket_of(s, buckets) for s in ids], pa.int64())
                for bucket in sorted(set(keys.to_pylist())):
                    part = table.filter(pc.equal(keys, bucket))
                    if bucket not in writers:
                        writers[bucket] = pq.ParquetWriter(
                            str(Path(tmp) / f"{bucket}.parquet"), part.schema)
                    writers[bucket].write_table(part)
        finally:
            for writer in writers.values():
                writer.close()
        for bucket in sorted(writers):
            yield from _group(pq.read_table(str(Path(tmp) / f"{bucket}.parquet")).to_pylist())


def load_image(group: SampleGroup, config: ImageConfig, *, embed: bool) -> HFImage:
    """The sample's image as a `datasets` Image value: its file's bytes (checked against the
    sha256 the run judged, so rewards never travel with a different picture), or, with
    `embed=False`, only its resolved URI (the file must then stay where it is)."""
    if not embed:
        return HFImage(path=group.image_uri)
    data = read_bytes(group.image_uri, config)
    expected = group.image_sha256()
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise ImageError(f"image changed since the run judged it: {group.image_uri}")
    return HFImage(bytes=data, path=group.image)


MAX_IMAGE_ERRORS = 20


def note_image_error(errors: list[str], group: SampleGroup, exc: Exception) -> None:
    """Keep the first few unreadable images' reasons for the summary (all are counted)."""
    if len(errors) < MAX_IMAGE_ERRORS:
        errors.append(f"{group.sample_id}: {exc}")
