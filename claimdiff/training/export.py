"""What the training exports share: the output folder, sharded Parquet writing, the summary.

Each export writes `<output>/part-SSSSS-of-NNNNN.parquet` (zstd, the schema and the `datasets`
features derived from its row model) and `<output>.json`, the summary: how many rows and samples
went in, how many rows came out, and every dropped row, sample or pair counted by its reason.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from claimdiff.errors import ConfigError
from claimdiff.io.datasets import SHARD_GLOB, filesystem, join
from claimdiff.training.formats import parquet_schema, to_table
from claimdiff.version import code_version


class ExportSummary(BaseModel):
    """`<output>.json`: what an export read, wrote and dropped, by reason."""

    dataset: str = Field(description="pairs, rwr or verl")
    run: str = Field(description="the judge run read")
    output: str
    created_at: str
    code_version: str
    config: dict[str, Any]
    rows_read: int = Field(description="rewards/ rows read, failed ones included")
    samples_read: int = Field(description="samples (image + reference) read")
    samples_used: int = Field(description="samples that gave at least one output row")
    rows_written: int
    shards: int
    dropped_rows: dict[str, int] = Field(description="rewards/ rows left out, by reason")
    dropped_samples: dict[str, int] = Field(description="samples left out whole, by reason")
    dropped_pairs: dict[str, int] = Field(
        default_factory=dict, description="candidate pairs left out, by reason (pairs only)")
    extra: dict[str, Any] = Field(default_factory=dict, description="export-specific figures")


def summary_path(output: str) -> str:
    return output.rstrip("/") + ".json"


def prepare_output(output: str, *, overwrite: bool) -> None:
    """Refuse to mix two exports in one folder; with `overwrite`, clear the previous one."""
    fs, root = filesystem(output)
    if fs.exists(join(root, "run.json")) or fs.isdir(join(root, "rewards")):
        # its shards would be taken for an earlier export's, and --overwrite would delete them
        raise ConfigError(f"{output} is a judge run's folder: write the export to a folder of "
                          "its own (the default is RUN/<dataset>)")
    existing = fs.glob(join(root, SHARD_GLOB)) + fs.glob(join(root, "*", SHARD_GLOB))
    summary = summary_path(root)
    if fs.exists(summary):
        existing.append(summary)
    if not existing:
        return
    if not overwrite:
        raise ConfigError(f"{output} already holds an export; pass --overwrite to replace it")
    for path in existing:
        fs.rm(path)


class ShardWriter:
    """Rows of one model -> `part-SSSSS-of-NNNNN.parquet` files of at most `rows_per_shard` rows.

    Shards are written as `.part-SSSSS.tmp` and renamed once the count is known, so a reader
    never sees a half-written dataset under the final names; an empty export writes one typed
    empty shard.
    """

    def __init__(self, output: str, model: type[BaseModel], rows_per_shard: int) -> None:
        self._fs, self._root = filesystem(output)
        self._model = model
        self._rows_per_shard = rows_per_shard
        self._buffer: list[BaseModel] = []
        self._temp: list[str] = []
        self.rows = 0
        self._fs.makedirs(self._root, exist_ok=True)

    def write(self, row: BaseModel) -> None:
        self._buffer.append(row)
        self.rows += 1
        if len(self._buffer) >= self._rows_per_shard:
            self._flush()

    def _flush(self) -> None:
        path = join(self._root, f".part-{len(self._temp):05d}.tmp")
        with self._fs.open(path, "wb") as handle:
            pq.write_table(to_table(self._buffer, self._model), handle, compression="zstd")
        self._temp.append(path)
        self._buffer = []

    def close(self) -> int:
        if self._buffer or not self._temp:
            self._flush()
        total = len(self._temp)
        for index, path in enumerate(self._temp):
            self._fs.mv(path, join(self._root, f"part-{index:05d}-of-{total:05d}.parquet"))
        return total


def schema_of(model: type[BaseModel]) -> str:
    return parquet_schema(model).to_string(show_schema_metadata=False)


def finish(summary: ExportSummary) -> ExportSummary:
    fs, root = filesystem(summary.output)
    with fs.open(summary_path(root), "wb") as handle:
        handle.write(json.dumps(summary.model_dump(mode="json"), indent=2).encode() + b"\n")
    _refresh_card(summary)
    return summary


def _refresh_card(summary: ExportSummary) -> None:
    """Pairs written into their run's own folder (`RUN/pairs`) join the run's dataset card."""
    from claimdiff.io.card import TABLES, write_card
    from claimdiff.io.datasets import read_run_manifest

    output, run = summary.output.rstrip("/"), summary.run.rstrip("/")
    if summary.dataset in TABLES and output == join(run, summary.dataset):
        write_card(run, read_run_manifest(run))


def new_summary(dataset: str, run: str, output: str, config: BaseModel, **counts: Any
                ) -> ExportSummary:
    return ExportSummary(dataset=dataset, run=run, output=output,
                         created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                         code_version=code_version(), config=config.model_dump(mode="json"),
                         **counts)


def counts(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items()))
