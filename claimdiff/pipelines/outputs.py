"""The output folder of a run: preparing it, reading back its accounting, writing `run.json`.

All output I/O goes through Beam's `FileSystems`, the same layer the Parquet sinks write with,
so any output URI the pipeline can write (local, gs://, s3://) can also be checked here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from claimdiff.errors import ConfigError
from claimdiff.io.manifest import iter_manifest
from claimdiff.schemas.run import Accounting, RunManifest

DIFFERENCES = "differences"
REWARDS = "rewards"
FAILURES = "failures"
RUN_MANIFEST = "run.json"
DATASETS = (DIFFERENCES, REWARDS, FAILURES)


def _join(output: str, *parts: str) -> str:
    return "/".join([output.rstrip("/"), *parts])


def shards(output: str, dataset: str) -> list[str]:
    pattern = _join(output, dataset, "part-*.parquet")
    (match,) = FileSystems.match([pattern])
    return sorted(m.path for m in match.metadata_list)


def prepare_output(output: str, *, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder; with `overwrite`, clear the previous run first."""
    existing = [_join(output, d) for d in DATASETS if shards(output, d)]
    run_json = _join(output, RUN_MANIFEST)
    if FileSystems.exists(run_json):
        existing.append(run_json)
    if not existing:
        return
    if not overwrite:
        raise ConfigError(
            f"{output} already holds a run ({', '.join(existing)}); pass --overwrite to replace it"
        )
    FileSystems.delete(existing)


def read_columns(output: str, dataset: str, columns: Sequence[str]) -> dict[str, list[object]]:
    values: dict[str, list[object]] = {c: [] for c in columns}
    for path in shards(output, dataset):
        with FileSystems.open(path) as handle:
            table = pq.ParquetFile(handle).read(columns=list(columns))
        for column in columns:
            values[column].extend(table.column(column).to_pylist())
    return values


def _num_rows(path: str) -> int:
    with FileSystems.open(path) as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def account(output: str, rows_in: int) -> Accounting:
    """Read the written shards back and check that every input row is accounted for once."""
    rewards = read_columns(output, REWARDS, ["status"])
    failures = read_columns(output, FAILURES, ["stage", "error_class", "sample_id"])
    differences = sum(_num_rows(p) for p in shards(output, DIFFERENCES))
    statuses = Counter(rewards["status"])
    rows_failed = len(failures["stage"])
    failed_with_row = sum(1 for s in failures["sample_id"] if s is not None)
    rows_judged = statuses.get("ok", 0)
    rewards_failed = statuses.get("failed", 0)
    return Accounting(
        rows_in=rows_in,
        rows_judged=rows_judged,
        rows_failed=rows_failed,
        rewards_failed=rewards_failed,
        differences=differences,
        failures_by_stage=dict(sorted(Counter(map(str, failures["stage"])).items())),
        failures_by_reason=dict(sorted(Counter(map(str, failures["error_class"])).items())),
        balanced=rows_in == rows_judged + rows_failed and rewards_failed == failed_with_row,
    )


def count_manifest_rows(manifests: Sequence[str]) -> int:
    return sum(1 for manifest in manifests for _ in iter_manifest(manifest))


def write_run_manifest(output: str, manifest: RunManifest) -> None:
    with FileSystems.create(_join(output, RUN_MANIFEST), mime_type="application/json") as handle:
        handle.write(json.dumps(manifest.model_dump(mode="json"), indent=2).encode() + b"\n")


def read_run_manifest(output: str) -> RunManifest:
    with FileSystems.open(_join(output, RUN_MANIFEST)) as handle:
        return RunManifest.model_validate_json(handle.read())
