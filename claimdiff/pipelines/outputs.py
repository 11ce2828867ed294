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
    """Read the written shards back and check that every input row is accounted for once.

    Totals alone could balance a lost row against a duplicated one, so input rows are also
    matched by identity, (manifest, row index): each one ends as exactly one ok reward row or
    one failure row, and each failed reward row has the failure row that explains it.
    """
    rewards = read_columns(output, REWARDS, ["status", "manifest", "row_index"])
    failures = read_columns(
        output, FAILURES, ["stage", "error_class", "manifest", "row_index", "sample_id"])
    statuses = Counter(rewards["status"])
    rows_failed = len(failures["stage"])
    rows_judged = statuses.get("ok", 0)
    rewards_failed = statuses.get("failed", 0)

    reward_keys = list(zip(rewards["manifest"], rewards["row_index"], rewards["status"],
                           strict=True))
    ok_keys = [(m, i) for m, i, status in reward_keys if status == "ok"]
    failed_keys = {(m, i) for m, i, status in reward_keys if status == "failed"}
    # every failure site knows its row's index; a row without one cannot be matched, only counted
    failure_rows = [(m, i, sample) for m, i, sample in zip(
        failures["manifest"], failures["row_index"], failures["sample_id"], strict=True)
        if i is not None]
    failure_keys = [(m, i) for m, i, _ in failure_rows]
    seen = Counter(ok_keys + failure_keys)
    duplicates = sum(count - 1 for count in seen.values() if count > 1)
    unexplained = len(failed_keys - set(failure_keys))
    # a row that failed after validation (it has an identity) also has its null reward row
    validated = {(m, i) for m, i, sample in failure_rows if sample is not None}
    without_reward = len(validated - failed_keys)
    return Accounting(
        rows_in=rows_in,
        rows_judged=rows_judged,
        rows_failed=rows_failed,
        rewards_failed=rewards_failed,
        differences=num_rows(output, DIFFERENCES),
        failures_by_stage=dict(sorted(Counter(map(str, failures["stage"])).items())),
        failures_by_reason=dict(sorted(Counter(map(str, failures["error_class"])).items())),
        duplicate_rows=duplicates,
        failed_rewards_without_failure=unexplained,
        failures_without_reward=without_reward,
        balanced=(rows_in == rows_judged + rows_failed and duplicates == 0 and unexplained == 0
                  and without_reward == 0 and rewards_failed == len(failed_keys)),
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
