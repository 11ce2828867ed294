"""The output folder of a run: preparing it, reading back its accounting, writing `run.json`.

Beam's Parquet sinks write the shards; everything claimdiff itself reads or writes there goes
through fsspec (`claimdiff.io.datasets`), like its inputs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from claimdiff.errors import ConfigError
from claimdiff.io.datasets import filesystem, join, num_rows, read_columns, shards
from claimdiff.io.manifest import iter_manifest
from claimdiff.schemas.run import Accounting, RunManifest

DIFFERENCES = "differences"
REWARDS = "rewards"
FAILURES = "failures"
RUN_MANIFEST = "run.json"
DATASETS = (DIFFERENCES, REWARDS, FAILURES)

def prepare_output(output: str, *, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder; with `overwrite`, clear the previous run first."""
    fs, root = filesystem(output)
    existing = [join(root, d) for d in DATASETS if shards(output, d)]
    if fs.exists(join(root, RUN_MANIFEST)):
        existing.append(join(root, RUN_MANIFEST))
    if not existing:
        return
    if not overwrite:
        raise ConfigError(
            f"{output} already holds a run ({', '.join(existing)}); pass --overwrite to replace it"
        )
    for path in existing:
        fs.rm(path, recursive=True)


def account(output: str, rows_in: int) -> Accounting:
    """Read the written shards back and check that every input row is accounted for once."""
    rewards = read_columns(output, REWARDS, ["status"])
    failures = read_columns(output, FAILURES, ["stage", "error_class", "sample_id"])
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
        differences=num_rows(output, DIFFERENCES),
        failures_by_stage=dict(sorted(Counter(map(str, failures["stage"])).items())),
        failures_by_reason=dict(sorted(Counter(map(str, failures["error_class"])).items())),
        balanced=rows_in == rows_judged + rows_failed and rewards_failed == failed_with_row,
    )


def count_manifest_rows(manifests: Sequence[str]) -> int:
    return sum(1 for manifest in manifests for _ in iter_manifest(manifest))


def write_run_manifest(output: str, manifest: RunManifest) -> None:
    fs, root = filesystem(output)
    with fs.open(join(root, RUN_MANIFEST), "wb") as handle:
        handle.write(json.dumps(manifest.model_dump(mode="json"), indent=2).encode() + b"\n")


def read_run_manifest(output: str) -> RunManifest:
    fs, root = filesystem(output)
    with fs.open(join(root, RUN_MANIFEST), "rb") as handle:
        return RunManifest.model_validate_json(handle.read())
