"""`claimdiff rewards`: a preset's rewards recomputed from a run's outputs, no judge call.

For each row of `rewards/`, its difference rows (from `differences/`, in difference order) are
derived again under the run's configuration with `--set` overrides (`severity.*`,
`taxonomy.*`, `rewards.ambiguity.*` change types, severities, weights and ambiguity counts),
the row statistics are rebuilt by the same `row_stats` the judge pipeline uses, and the preset is
applied. With the run's own configuration the values are the judge-time values, bit for bit.

Where the difference rows predate the label fields (`labels_recorded` false), the judge's
labels and overall verdict are read back from `rewards.raw_answer` with the run's parser; a row
whose answer was not kept keeps the outcome-derived error fields, and `labels` counting has no
value there (null, with the reason in `failure_reason`).

The result is a dataset of its own beside `rewards/`: `rewards-<name>-v<version>/` (one Parquet
shard, the `rewards/` schema with this preset alone in `rewards` and `preset_values`) and
`preset.json` in it (the preset, the configuration it ran under, the source run). Failed rows
stay failed, with null rewards.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from claimdiff.config import ClaimdiffConfig, Preset, load_config
from claimdiff.errors import ConfigError, JudgeOutputError
from claimdiff.io.datasets import filesystem, has_dataset, join, read_rows
from claimdiff.judges.formats import parser_for
from claimdiff.rewards.presets import reward_value
from claimdiff.rewards.stats import row_stats, with_derived_fields
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.arrow import to_table
from claimdiff.schemas.rows import (
    DifferenceRow,
    RewardRow,
    RewardStats,
    RewardValue,
    RowStatus,
    SeveritySource,
    reward_row_model,
)
from claimdiff.version import code_version

# presets known by name without a configuration: each kind at its defaults
BUILTIN_PRESETS: Mapping[str, dict[str, Any]] = {
    name: {"kind": kind} for name, kind in (
        ("relative", "relative"), ("actor_only", "actor_only"), ("tradeoff", "tradeoff"),
        ("lambda", "lambda"), ("normalized_diff", "normalized_diff"),
        ("normalized_a_only", "normalized_a_only"), ("a_only", "a_only"),
        ("raw_diff", "raw_diff"), ("judgment_based", "judgment_based"),
        ("hall_vs_miss", "hall_vs_miss"), ("holistic", "holistic"))}
# configuration sections a recomputation may change: what the statistics are derived with
CONFIG_SECTIONS = ("severity.", "taxonomy.", "rewards.ambiguity.", "rewards.hedges")
_PRESET = TypeAdapter(Preset)


def run_config(run: str, overrides: Mapping[str, Any] | None = None) -> ClaimdiffConfig:
    """The run's configuration (its `run.json`) with dotted `overrides`."""
    from claimdiff.pipelines.outputs import read_run_manifest

    bad = [key for key in overrides or {} if not key.startswith(CONFIG_SECTIONS)]
    if bad:
        raise ConfigError(f"cannot change {bad} when recomputing: only "
                          f"{', '.join(s.rstrip('.') for s in CONFIG_SECTIONS)} apply")
    try:
        manifest = read_run_manifest(run)
    except FileNotFoundError as exc:
        raise ConfigError(f"{run} has no run.json: not a finished claimdiff run") from exc
    return load_config(json.dumps(manifest.config), dict(overrides or {}))


def resolve_preset(name: str, config: ClaimdiffConfig,
                   fields: Mapping[str, Any] | None = None) -> Preset:
    """A configured preset of the run by name, else a built-in one; `fields` override it."""
    configured = {p.name: p for p in config.rewards.presets}
    if name in configured:
        base = configured[name].model_dump()
    elif name in BUILTIN_PRESETS:
        base = {**BUILTIN_PRESETS[name], "name": name}
    else:
        raise ConfigError(f"unknown preset {name!r}: the run's are {sorted(configured)}, the "
                          f"built-in ones {sorted(BUILTIN_PRESETS)}")
    try:
        return _PRESET.validate_python({**base, **(fields or {})})
    except ValidationError as exc:
        raise ConfigError(f"invalid preset {name!r}: {exc}") from exc


@dataclass(frozen=True)
class RecomputedRow:
    """One `rewards/` row with its statistics derived again (None: failed, or not derivable)."""

    row: RewardRow
    stats: RewardStats | None
    note: str | None = None  # why `labels` counting has no value, where it has none


def _labels_from_answer(rows: list[DifferenceRow], raw: str, output_format: str,
                        ) -> tuple[list[DifferenceRow], str | None]:
    """Rows without label fields, completed from the judge's stored answer."""
    output = parser_for(output_format)(raw)
    if len(output.differences) != len(rows):
        raise JudgeOutputError(f"the stored answer has {len(output.differences)} differences, "
                               f"differences/ has {len(rows)}")
    completed = []
    for row, difference in zip(rows, output.differences, strict=True):
        update: dict[str, Any] = {"labels_recorded": True}
        for side, label in (("actor", difference.actor_error),
                            ("reference", difference.reference_error)):
            if label is not None:
                update |= {f"{side}_label_type": label.type, f"{side}_label_detail": label.detail,
                           f"{side}_label_severity": label.severity,
                           f"{side}_label_severity_raw": label.severity_raw}
        completed.append(row.model_copy(update=update))
    return completed, output.overall.value if output.overall is not None else None


def _outcome_label(prefix: str, erred: bool, error_type: str | None, detail: str | None,
                   severity: int | None, source: SeveritySource | None) -> dict[str, Any]:
    if not erred:
        return {}
    return {f"{prefix}_label_type": error_type or "other", f"{prefix}_label_detail": detail,
            f"{prefix}_label_severity": severity if source is SeveritySource.JUDGE else None}


def _labels_from_outcomes(rows: list[DifferenceRow]) -> list[DifferenceRow]:
    """No answer to read: the error fields of the sides that erred stand in for labels, so
    outcomes counting derives what the run derived (labels counting cannot)."""
    return [row.model_copy(update={
        **_outcome_label("actor", row.actor_erred, row.actor_error_type, row.actor_error_detail,
                         row.actor_severity, row.actor_severity_source),
        **_outcome_label("reference", row.reference_erred, row.reference_error_type,
                         row.reference_error_detail, row.reference_severity,
                         row.reference_severity_source)})
        for row in rows]


def recompute_row(reward: RewardRow, differences: Sequence[DifferenceRow],
                  config: ClaimdiffConfig, mapper: TypeMapper) -> RecomputedRow:
    """The statistics of one row, derived again from its difference rows under `config`."""
    if reward.status is not RowStatus.OK or reward.stats is None:
        return RecomputedRow(reward, None)
    rows = sorted(differences, key=lambda d: d.difference_index)
    overall, note, labels_known = reward.stats.overall, None, True
    if any(not d.labels_recorded for d in rows):
        output_format = reward.decoding.output_format if reward.decoding else "json"
        if reward.raw_answer is not None:
            try:
                rows, overall = _labels_from_answer(rows, reward.raw_answer, output_format)
            except JudgeOutputError as exc:
                rows, labels_known = _labels_from_outcomes(rows), False
                note = f"labels not recoverable from the stored answer: {exc}"
        else:
            rows, labels_known = _labels_from_outcomes(rows), False
            note = "labels not recorded and no stored answer (run written before both)"
    derived = [with_derived_fields(d, config, mapper) for d in rows]
    stats = row_stats(reward.caption, reward.reference, derived, config, overall=overall,
                      attempts=reward.stats.judge_attempts,
                      verify_disagreements=reward.stats.verify_disagreements,
                      holistic_score=reward.stats.holistic_score)
    if not labels_known:
        stats = stats.model_copy(update={"labels": None})
    return RecomputedRow(reward, stats, note)


def recompute_rows(run: str, config: ClaimdiffConfig) -> list[RecomputedRow]:
    """Every `rewards/` row of a run (in shard order) with its statistics derived again."""
    for dataset in ("rewards", "differences"):
        if not has_dataset(run, dataset):
            raise ConfigError(f"{run} has no {dataset}/ folder: not a claimdiff judge output")
    by_row: dict[tuple[str, int], list[DifferenceRow]] = defaultdict(list)
    for difference in read_rows(run, "differences", DifferenceRow):
        by_row[(difference.manifest, difference.row_index)].append(difference)
    mapper = TypeMapper(config.taxonomy)
    return [recompute_row(reward, by_row.get((reward.manifest, reward.row_index), []), config,
                          mapper)
            for reward in read_rows(run, "rewards", RewardRow)]


def rewarded_row(item: RecomputedRow, preset: Preset, config: ClaimdiffConfig) -> RewardRow:
    """The `rewards-<name>-v<version>/` row of one recomputed row."""
    row = item.row
    if item.stats is None:
        return row.model_copy(update={"reward": None, "rewards": [], "preset_values": None})
    value = reward_value(item.stats, preset, config.severity)
    reason = row.failure_reason
    if value is None:
        reason = item.note if preset.counting == "labels" and item.note else (
            f"preset {preset.name} has nothing to score on this row")
    return row.model_copy(update={
        "reward": value,
        "rewards": [RewardValue(name=preset.name, kind=preset.kind, version=preset.version,
                                value=value)],
        "preset_values": {preset.name: value}, "stats": item.stats, "failure_reason": reason})


@dataclass(frozen=True)
class RecomputeResult:
    dataset: str
    rows: int
    ok: int
    null: int
    mean: float | None


def dataset_name(preset: Preset) -> str:
    return f"rewards-{preset.name}-v{preset.version}"


def write_recomputed(run: str, preset: Preset, config: ClaimdiffConfig,
                     overrides: Mapping[str, Any] | None = None, *,
                     overwrite: bool = False) -> RecomputeResult:
    """Recompute `preset` over a run and write `rewards-<name>-v<version>/` beside `rewards/`."""
    fs, root = filesystem(run)
    folder = join(root, dataset_name(preset))
    if fs.exists(folder):
        if not overwrite:
            raise ConfigError(f"{run}/{dataset_name(preset)} exists: bump the preset's version "
                              "(--set version=N) or pass --overwrite")
        fs.rm(folder, recursive=True)
    rows = [rewarded_row(item, preset, config) for item in recompute_rows(run, config)]
    fs.makedirs(folder, exist_ok=True)
    table = to_table(rows, reward_row_model([preset.name]))
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    # written whole under a temporary name, then renamed: a killed command leaves no half shard
    temporary = join(folder, ".part-00000-of-00001.parquet.tmp")
    fs.pipe_file(temporary, buffer.getvalue().to_pybytes())
    fs.mv(temporary, join(folder, "part-00000-of-00001.parquet"))
    with fs.open(join(folder, "preset.json"), "wb") as handle:
        handle.write(json.dumps({
            "preset": preset.model_dump(mode="json"), "overrides": dict(overrides or {}),
            "severity": config.severity.model_dump(mode="json"),
            "taxonomy": config.taxonomy.model_dump(mode="json"),
            "ambiguity": config.rewards.ambiguity.model_dump(mode="json"),
            "code_version": code_version()}, indent=2).encode() + b"\n")
    values = [r.reward for r in rows if r.status is RowStatus.OK and r.reward is not None]
    ok = sum(1 for r in rows if r.status is RowStatus.OK)
    return RecomputeResult(dataset=dataset_name(preset), rows=len(rows), ok=ok,
                           null=len(rows) - len(values),
                           mean=sum(values) / len(values) if values else None)
