"""The output folder of a run: preparing it, reading back its accounting, committing `run.json`.

Beam's Parquet sinks write the shards; everything claimdiff itself reads or writes there goes
through fsspec (`claimdiff.io.datasets`), like its inputs.

A run commits by writing `run.json` last, atomically (a temporary name renamed over on a local
disk; one PUT, which appears whole or not at all, on an object store), listing every shard it
wrote. Until then the folder holds an incomplete run that every reader refuses. Preparing a
folder for `--overwrite` removes the old `run.json` first, so a run killed while clearing never
leaves a folder that reads as complete.
"""

from __future__ import annotations

import errno
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from claimdiff.errors import ConfigError, OutOfSpaceError
from claimdiff.io.card import CARD_NAME, write_card
from claimdiff.io.datasets import (
    RUN_MANIFEST,
    filesystem,
    join,
    read_columns,
    shard_rows,
)
from claimdiff.io.datasets import read_run_manifest as read_run_manifest
from claimdiff.io.fs import write_whole
from claimdiff.io.manifest import iter_manifest
from claimdiff.judges.answers import ANSWERS
from claimdiff.schemas.run import Accounting, FailureReason, RunManifest, ShardFile

DIFFERENCES = "differences"
REWARDS = "rewards"
FAILURES = "failures"
DATASETS = (DIFFERENCES, REWARDS, FAILURES)
# Beam's file sinks stage shards in `<dataset>/beam-temp-*` folders and rename them at the end.
BEAM_TEMP_GLOB = "beam-temp-*"
TOP_FAILURE_REASONS = 10
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _run_content(output: str) -> list[str]:
    """What a run (complete or not) left in `output`: run.json first, then dataset folders,
    then the answers it kept."""
    fs, root = filesystem(output)
    found = []
    if fs.exists(join(root, RUN_MANIFEST)):
        found.append(join(root, RUN_MANIFEST))
    for dataset in (*DATASETS, ANSWERS):
        folder = join(root, dataset)
        if fs.exists(folder) and (fs.glob(join(folder, "*")) or fs.isdir(folder)):
            found.append(folder)
    if found and fs.exists(join(root, CARD_NAME)):  # the run's card, not someone's README
        found.append(join(root, CARD_NAME))
    return found


def prepare_output(output: str, *, overwrite: bool, resume: bool = False) -> bool:
    """Refuse to mix two runs in one folder; with `overwrite`, clear the previous run first;
    with `resume`, clear an incomplete run's partial shards and keep its `answers/`.

    Returns whether answers of a killed run were kept (for the run to reuse). The caller holds
    the folder's claim (`claimdiff.io.claims`), so nothing else writes here.
    """
    fs, root = filesystem(output)
    if fs.isfile(root):
        raise ConfigError(f"--output {output} is a file, not a folder")
    existing = _run_content(output)
    if not existing:
        return False
    committed = fs.exists(join(root, RUN_MANIFEST))
    if resume:
        if committed:
            raise ConfigError(
                f"{output} holds a finished run: nothing to resume (pass --reuse {output} "
                "with a new --output to reuse its answers, or --overwrite to replace it)")
        answers = join(root, ANSWERS)
        for path in existing:
            if path != answers:
                fs.rm(path, recursive=True)
        return answers in existing
    if not overwrite:
        if committed:
            raise ConfigError(f"{output} already holds a run ({', '.join(existing)}); pass "
                              "--overwrite to replace it")
        raise ConfigError(
            f"{output} already holds an incomplete run (no run.json: it was killed) "
            f"({', '.join(existing)}); pass --resume to finish it without judging again what "
            "it kept, or pass --overwrite to replace it")
    for path in existing:  # run.json first: the folder stops reading as complete at once
        fs.rm(path, recursive=True)
    return False


def remove_temp(output: str) -> list[str]:
    """Remove Beam's staging folders (`<dataset>/beam-temp-*`); the paths removed."""
    fs, root = filesystem(output)
    removed = []
    for dataset in DATASETS:
        for path in fs.glob(join(root, dataset, BEAM_TEMP_GLOB)):
            fs.rm(path, recursive=True)
            removed.append(path)
    return removed


_QUOTED = re.compile(r"'[^'\n]{0,200}'|\"[^\"\n]{0,200}\"")
_PATHLIKE = re.compile(r"\S*[/\\]\S*")
_NUMBER = re.compile(r"\d+")


def failure_reason(message: str) -> str:
    """A message with its row-specific parts replaced, so alike failures count as one reason.

    >>> failure_reason("line 12: image not found: /data/img/7.png")
    'line #: image not found: <path>'
    >>> failure_reason("column 'caption' is missing or null")
    "column 'caption' is missing or null"
    """
    head = message.split("\n", 1)[0][:300]
    # a quoted column name identifies the reason; a quoted value does not: keep short names
    head = _QUOTED.sub(lambda m: m.group(0) if len(m.group(0)) <= 24 else "<text>", head)
    head = _PATHLIKE.sub("<path>", head)
    return _NUMBER.sub("#", head)


def top_failure_reasons(stages: Iterable[str], classes: Iterable[str],
                        messages: Iterable[str]) -> list[FailureReason]:
    counts: Counter[tuple[str, str, str]] = Counter()
    examples: dict[tuple[str, str, str], str] = {}
    for stage, error_class, message in zip(stages, classes, messages, strict=True):
        key = (str(stage), str(error_class), failure_reason(str(message)))
        counts[key] += 1
        example = str(message).split("\n", 1)[0][:300]
        # the smallest example, and ties in count by name: the same whatever the shard order
        examples[key] = min(examples.get(key, example), example)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [FailureReason(stage=stage, error_class=error_class, reason=reason, count=count,
                          example=examples[(stage, error_class, reason)])
            for (stage, error_class, reason), count in ranked[:TOP_FAILURE_REASONS]]


def account(output: str, rows_in: int) -> Accounting:
    """Read the written shards back and check that every input row is accounted for once.

    Totals alone could balance a lost row against a duplicated one, so input rows are also
    matched by identity, (manifest, row index): each one ends as exactly one ok reward row or
    one failure row, and each failed reward row has the failure row that explains it.
    """
    rewards = read_columns(output, REWARDS, ["status", "manifest", "row_index"],
                           committed=False)
    failures = read_columns(
        output, FAILURES, ["stage", "error_class", "message", "manifest", "row_index",
                           "sample_id"], committed=False)
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
        differences=sum(shard_rows(output, DIFFERENCES, committed=False).values()),
        failures_by_stage=dict(sorted(Counter(map(str, failures["stage"])).items())),
        failures_by_reason=dict(sorted(Counter(map(str, failures["error_class"])).items())),
        duplicate_rows=duplicates,
        failed_rewards_without_failure=unexplained,
        failures_without_reward=without_reward,
        balanced=(rows_in == rows_judged + rows_failed and duplicates == 0 and unexplained == 0
                  and without_reward == 0 and rewards_failed == len(failed_keys)),
        top_failure_reasons=top_failure_reasons(
            failures["stage"], failures["error_class"], failures["message"]),
    )


def written_files(output: str, datasets: Sequence[str] = DATASETS) -> dict[str, list[ShardFile]]:
    """The shards the run wrote, for `run.json`'s listing."""
    return {dataset: [ShardFile(name=name, rows=rows) for name, rows in
                      shard_rows(output, dataset, committed=False).items()]
            for dataset in datasets}


def count_manifest_rows(manifests: Sequence[str]) -> int:
    return sum(1 for manifest in manifests for _ in iter_manifest(manifest))


def commit_run(output: str, manifest: RunManifest) -> None:
    """Write `run.json`, atomically: the run is complete from this moment, and not before."""
    data = json.dumps(manifest.model_dump(mode="json"), indent=2).encode() + b"\n"
    write_card(output, manifest)  # before the commit: a committed run always has its card
    fs, root = filesystem(output)
    write_whole(fs, join(root, RUN_MANIFEST), data)


def is_out_of_space(exc: BaseException) -> bool:
    """Whether an error (or any error it wraps, or its text, for errors a runner re-raised
    from a worker as text) says the filesystem is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in OUT_OF_SPACE:
            return True
        text = str(current)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def out_of_space(output: str, exc: BaseException) -> OutOfSpaceError:
    return OutOfSpaceError(
        f"no space left on the filesystem of {output}; the run did not commit and its staging "
        "files were removed: free some space and rerun with --overwrite")
