"""The expectation suite of a run, as data: built in code from the pydantic row models.

Nothing here imports Great Expectations: a `Check` names a GE expectation type and its
arguments, and `quality.validate` turns checks into GE expectations and runs them. The value
checks are derived by walking the row models (`schemas.rows`), so the suite follows the schema:

- a field that is not `X | None` must not be null;
- a `StrEnum` or `Literal` field must hold one of its values (list items too);
- `Field(ge=, le=, gt=, lt=)` bounds become ranges, `min_length`/`max_length` length bounds,
  `pattern` a regex;
- required nested models are flattened into dotted columns (`decoding.seed`); optional nested
  models and lists of models or enums become tables of their own (`rewards.stats`: the rows
  that have statistics; `rewards.rewards`, `differences.outcomes`: one row per item).

Identity, health, accounting, judge-noise and drift checks are built on top, each with a stable
id; `SUITE_VERSION` changes whenever the rules of the derivation change.
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field

from claimdiff.errors import ConfigError
from claimdiff.quality.config import QualityConfig, Where
from claimdiff.schemas.rows import DifferenceRow, FailureRow, RewardRow, RowStatus

SUITE_VERSION = 1

DATASET_MODELS: dict[str, type[BaseModel]] = {
    "differences": DifferenceRow, "rewards": RewardRow, "failures": FailureRow}
# what identifies a row of each dataset; checked unique (failure rows without an index, from
# malformed manifest rows, have no identity and are left out)
IDENTITY: dict[str, tuple[str, ...]] = {
    "differences": ("manifest", "row_index", "difference_index"),
    "rewards": ("manifest", "row_index"),
    "failures": ("manifest", "row_index"),
}
for _dataset, _keys in IDENTITY.items():
    assert set(_keys) <= set(DATASET_MODELS[_dataset].model_fields), _dataset

Family = Literal["schema", "values", "identity", "health", "accounting", "noise", "drift",
                 "custom"]
FAMILIES: tuple[str, ...] = typing.get_args(Family)


class Check(BaseModel):
    """One expectation: where it runs, what Great Expectations checks, and why."""

    model_config = ConfigDict(frozen=True)

    id: str
    family: Family
    frame: str = Field(description="the table the expectation runs on")
    type: str = Field(description="Great Expectations expectation type (snake case)")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    where: Where | None = None
    description: str = ""
    threshold: str | None = Field(default=None, description="the limit, for people")


class Skipped(BaseModel):
    """A check that could not be computed for this run, and why (not a failure)."""

    id: str
    family: Family
    reason: str


# ---------------------------------------------------------------- derived from the models


@dataclass(frozen=True)
class FrameLayout:
    """One table derived from a dataset: its rows, or the items of a nested part of them.

    `path` leads from a dataset row to the table's items through optional nested models (one
    table row per row where it is present) and lists of models or enums (one table row per
    item). Required nested models are flattened into their parent's table instead.
    """

    name: str
    dataset: str
    path: tuple[str, ...]
    item: Any  # a model, or an enum for a list of enum values


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (itself, False)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _list_item(annotation: Any) -> Any | None:
    inner, _ = _unwrap_optional(annotation)
    if typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner)
        return _unwrap_optional(item)[0]
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_enum(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def table_of(annotation: Any) -> Any | None:
    """The item type when a field becomes a table of its own (optional model, list of models
    or enums), else None (a column, or a required model flattened into its parent)."""
    inner, nullable = _unwrap_optional(annotation)
    item = _list_item(annotation)
    if item is not None:
        return item if _is_model(item) or _is_enum(item) else None
    return inner if nullable and _is_model(inner) else None


def _child_layouts(model: type[BaseModel], dataset: str, name: str, path: tuple[str, ...],
                   prefix: str = "") -> Iterator[FrameLayout]:
    for field_name, info in model.model_fields.items():
        item = table_of(info.annotation)
        inner, _ = _unwrap_optional(info.annotation)
        if item is not None:
            child = f"{name}.{prefix}{field_name}"
            yield FrameLayout(child, dataset, (*path, f"{prefix}{field_name}"), item)
            if _is_model(item):
                yield from _child_layouts(item, dataset, child, (*path, f"{prefix}{field_name}"))
        elif _is_model(inner):
            yield from _child_layouts(inner, dataset, name, path, f"{prefix}{field_name}.")


def frame_layouts() -> list[FrameLayout]:
    """Every table the row models give, the datasets first."""
    layouts = [FrameLayout(d, d, (), m) for d, m in DATASET_MODELS.items()]
    for dataset, model in DATASET_MODELS.items():
        layouts += _child_layouts(model, dataset, dataset, ())
    return layouts


def _allowed_values(annotation: Any) -> list[Any] | None:
    if _is_enum(annotation):
        return [member.value for member in annotation]
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    return None


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            kwargs["min_value"] = item.ge
        elif isinstance(item, annotated_types.Gt):
            kwargs |= {"min_value": item.gt, "strict_min": True}
        elif isinstance(item, annotated_types.Le):
            kwargs["max_value"] = item.le
        elif isinstance(item, annotated_types.Lt):
            kwargs |= {"max_value": item.lt, "strict_max": True}
    return kwargs


def _lengths(metadata: list[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, annotated_types.MinLen):
            kwargs["min_value"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            kwargs["max_value"] = item.max_length
    return kwargs


def _pattern(metadata: list[Any]) -> str | None:
    for item in metadata:
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return None


def _column_checks(frame: str, column: str, annotation: Any, metadata: list[Any],
                   nullable: bool, origin: str) -> Iterator[Check]:
    """The value checks of one (flattened) column, from its annotation and Field metadata."""
    if not nullable:
        yield Check(id=f"{frame}.{column}.not_null", family="values", frame=frame,
                    type="expect_column_values_to_not_be_null", kwargs={"column": column},
                    description=f"{origin} is required: never null")
    allowed = _allowed_values(annotation)
    if allowed is not None:
        yield Check(id=f"{frame}.{column}.in_set", family="values", frame=frame,
                    type="expect_column_values_to_be_in_set",
                    kwargs={"column": column, "value_set": allowed},
                    description=f"{origin} is one of {', '.join(map(str, allowed))}")
    bounds = _bounds(metadata)
    if bounds:
        low, high = bounds.get("min_value"), bounds.get("max_value")
        yield Check(id=f"{frame}.{column}.range", family="values", frame=frame,
                    type="expect_column_values_to_be_between", kwargs={"column": column, **bounds},
                    description=f"{origin} lies in its range",
                    threshold=f"[{'-inf' if low is None else low}, "
                    f"{'inf' if high is None else high}]")
    lengths = _lengths(metadata)
    if lengths and annotation is str:
        yield Check(id=f"{frame}.{column}.length", family="values", frame=frame,
                    type="expect_column_value_lengths_to_be_between",
                    kwargs={"column": column, **lengths},
                    description=f"{origin} has the length the model allows",
                    threshold=json.dumps(lengths))
    pattern = _pattern(metadata)
    if pattern is not None and annotation is str:
        yield Check(id=f"{frame}.{column}.pattern", family="values", frame=frame,
                    type="expect_column_values_to_match_regex",
                    kwargs={"column": column, "regex": pattern},
                    description=f"{origin} matches {pattern}")


def model_checks(model: type[BaseModel], frame: str, prefix: str = "") -> list[Check]:
    """The value checks of a model's fields on the table of its rows (required nested models
    flattened under `prefix`; optional ones and lists of models or enums have their own)."""
    checks: list[Check] = []
    for name, info in model.model_fields.items():
        column = prefix + name
        inner, nullable = _unwrap_optional(info.annotation)
        origin = f"{model.__name__}.{name}"
        if table_of(info.annotation) is not None:
            if not nullable:  # a required list: present, possibly empty
                checks.extend(_column_checks(frame, column, None, [], False, origin))
        elif _is_model(inner):
            checks.extend(model_checks(inner, frame, f"{column}."))
        elif _list_item(info.annotation) is None:
            checks.extend(_column_checks(frame, column, inner, list(info.metadata), nullable,
                                         origin))
        elif not nullable:
            checks.extend(_column_checks(frame, column, None, [], False, origin))
    return checks


def layout_checks(layout: FrameLayout) -> list[Check]:
    """The value checks of one table: its model's fields, or its enum values."""
    if _is_model(layout.item):
        return model_checks(layout.item, layout.name)
    column = layout.path[-1]
    return list(_column_checks(layout.name, column, layout.item, [], False,
                               f"{layout.dataset}.{'.'.join(layout.path)}[]"))


def schema_sha256() -> str:
    """A hash of the row models' JSON schemas: it changes whenever a model does."""
    text = json.dumps({name: model.model_json_schema() for name, model in DATASET_MODELS.items()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- run-level checks


@dataclass
class CheckContext:
    """What the run-level checks depend on, gathered from the run before the suite is built."""

    run_id: str
    run_max_failure_share: float
    presets: list[str] = field(default_factory=list)  # configured reward preset names, in order
    primary: str | None = None
    unusable: dict[str, str] = field(default_factory=dict)  # "frame:column" -> why
    empty: dict[str, str] = field(default_factory=dict)  # check id pattern -> why undefined
    metrics: list[str] = field(default_factory=list)  # rows of the metrics table
    skipped: list[Skipped] = field(default_factory=list)  # computed upstream (noise, drift)
    frames: set[str] = field(default_factory=set)


def _mean_at_most(check_id: str, frame: str, column: str, limit: float, description: str,
                  where: Where | None = None) -> Check:
    return Check(id=check_id, family="health", frame=frame, type="expect_column_mean_to_be_between",
                 kwargs={"column": column, "min_value": 0.0, "max_value": limit}, where=where,
                 description=description, threshold=f"<= {limit:g}")


def _metric(check_id: str, family: Family, low: float | None, high: float | None,
            description: str) -> Check:
    threshold = f">= {low:g}" if high is None else f"<= {high:g}"
    return Check(id=check_id, family=family, frame="metrics",
                 type="expect_column_values_to_be_between",
                 kwargs={"column": "value", "min_value": low, "max_value": high},
                 where=Where(column="metric", op="==", value=check_id),
                 description=description, threshold=threshold)


_OK = Where(column="status", op="==", value=RowStatus.OK.value)


def identity_checks(ctx: CheckContext) -> list[Check]:
    checks = []
    for dataset, keys in IDENTITY.items():
        kwargs: dict[str, Any] = {"column_list": list(keys)}
        if dataset == "failures":
            kwargs["ignore_row_if"] = "any_value_is_missing"
        checks.append(Check(
            id=f"{dataset}.identity.unique", family="identity", frame=dataset,
            type="expect_compound_columns_to_be_unique", kwargs=kwargs,
            description=f"no two {dataset} rows share ({', '.join(keys)})"))
        checks.append(Check(
            id=f"{dataset}.run_id.matches_run", family="identity", frame=dataset,
            type="expect_column_values_to_be_in_set",
            kwargs={"column": "run_id", "value_set": [ctx.run_id]},
            description="every row belongs to the run of run.json"))
    checks += [
        Check(id="differences.belongs_to_judged_row", family="identity", frame="differences",
              type="expect_column_values_to_be_in_set",
              kwargs={"column": "derived.has_reward_row", "value_set": [True]},
              description="every difference belongs to an ok reward row (manifest, row_index)"),
        Check(id="rewards.ok_rows_have_reward", family="identity", frame="rewards",
              type="expect_column_values_to_not_be_null", kwargs={"column": "reward"}, where=_OK,
              description="every ok row has a (finite) primary reward"),
        Check(id="rewards.failed_rows_have_null_reward", family="identity", frame="rewards",
              type="expect_column_values_to_be_null", kwargs={"column": "reward"},
              where=Where(column="status", op="==", value=RowStatus.FAILED.value),
              description="a failed row's reward is null, never a number"),
        Check(id="rewards.null_reward_has_failure_row", family="identity", frame="rewards",
              type="expect_column_values_to_be_in_set",
              kwargs={"column": "derived.has_failure_row", "value_set": [True]},
              where=Where(column="reward", op="is_null"),
              description="no null reward without a failure row for the same input row"),
        Check(id="rewards.rewards.only_ok_rows", family="identity", frame="rewards.rewards",
              type="expect_column_values_to_be_in_set",
              kwargs={"column": "status", "value_set": [RowStatus.OK.value]},
              description="failed rows carry no reward values"),
    ]
    return checks


def reward_checks(ctx: CheckContext, config: QualityConfig) -> list[Check]:
    thresholds = config.thresholds
    checks: list[Check] = []

    def bounds(name: str) -> tuple[float, float]:
        return thresholds.reward_bounds_by_preset.get(name, thresholds.reward_bounds)

    if ctx.presets:
        checks.append(Check(
            id="rewards.rewards.name.configured", family="values", frame="rewards.rewards",
            type="expect_column_values_to_be_in_set",
            kwargs={"column": "name", "value_set": list(ctx.presets)},
            description="every reward value names a preset of the run's configuration"))
    names: list[str | None] = list(ctx.presets) or [None]
    for name in names:
        low, high = bounds(name) if name else thresholds.reward_bounds
        checks.append(Check(
            id=f"rewards.rewards.value.range.{name}" if name else "rewards.rewards.value.range",
            family="values", frame="rewards.rewards", type="expect_column_values_to_be_between",
            kwargs={"column": "value", "min_value": low, "max_value": high},
            where=Where(column="name", op="==", value=name) if name else None,
            description=f"reward values of preset {name} lie in range" if name
            else "reward values lie in range", threshold=f"[{low:g}, {high:g}]"))
    low, high = bounds(ctx.primary) if ctx.primary else thresholds.reward_bounds
    checks.append(Check(
        id="rewards.reward.range", family="values", frame="rewards",
        type="expect_column_values_to_be_between",
        kwargs={"column": "reward", "min_value": low, "max_value": high},
        description=f"the primary reward ({ctx.primary or 'the run primary preset'}) lies in range",
        threshold=f"[{low:g}, {high:g}]"))
    return checks


def health_checks(ctx: CheckContext, config: QualityConfig) -> list[Check]:
    t = config.thresholds
    failure_limit = t.max_failure_share if t.max_failure_share is not None \
        else ctx.run_max_failure_share
    checks = [_mean_at_most("health.failure_share", "rows", "failed", failure_limit,
                            "failed input rows / input rows")]
    for stage, limit in sorted(t.max_failure_share_by_stage.items()):
        checks.append(_mean_at_most(f"health.failure_share.stage.{stage.value}", "rows",
                                    f"failed_stage.{stage.value}", limit,
                                    f"input rows failed at stage {stage.value} / input rows"))
    for reason, limit in sorted(t.max_failure_share_by_reason.items()):
        checks.append(_mean_at_most(f"health.failure_share.reason.{reason}", "rows",
                                    f"failed_reason.{reason}", limit,
                                    f"input rows failed with {reason} / input rows"))
    checks += [
        _mean_at_most("health.parse_retry_share", "rewards.stats", "derived.parse_retried",
                      t.max_parse_retry_share,
                      "judged rows whose answer needed a retry / judged rows"),
        _mean_at_most("health.spurious_share", "differences", "derived.spurious",
                      t.max_spurious_share, "differences judged both_supported / differences"),
        _mean_at_most("health.unverifiable_share", "differences", "derived.unverifiable",
                      t.max_unverifiable_share, "differences judged uncertain / differences"),
        _mean_at_most("health.zero_difference_images", "images", "zero_differences",
                      t.max_zero_difference_image_share,
                      "judged images without any difference / judged images"),
        _mean_at_most("health.span_mismatch_share", "rewards", "derived.span_mismatch",
                      t.max_span_mismatch_share,
                      "judged rows with a span not found in its caption / judged rows", _OK),
    ]
    return checks


ACCOUNTING_CHECKS = [
    Check(id="accounting.run_json_matches_shards", family="accounting", frame="accounting",
          type="expect_column_pair_values_to_be_equal",
          kwargs={"column_A": "run_json", "column_B": "shards"},
          where=Where(column="kind", op="==", value="run_json"),
          description="each count of run.json's accounting equals the count recomputed from "
          "the shards"),
    Check(id="accounting.balanced", family="accounting", frame="accounting",
          type="expect_column_pair_values_to_be_equal",
          kwargs={"column_A": "run_json", "column_B": "shards"},
          where=Where(column="kind", op="==", value="balance"),
          description="rows in (run.json) = rows judged + rows failed (shards); no input row "
          "accounted for twice; failed reward rows and failure rows match one to one"),
]

_NOISE = {
    # metric: (limit attribute, is a minimum, description)
    "noise.verify_disagreement_rate": ("max_verify_disagreement_rate", False,
                                       "two-pass: differences whose passes disagreed / verified"),
    "noise.swap_difference_consistency": ("min_swap_difference_consistency", True,
                                          "position swap: differences found in both orders"),
    "noise.swap_judgment_consistency": ("min_swap_judgment_consistency", True,
                                        "position swap: matched differences whose judgment "
                                        "agrees"),
}
NOISE_STATS = {metric: metric.removeprefix("noise.") for metric in _NOISE}

_DRIFT = {
    "drift.canonical_type": ("max_type_distance",
                             "total variation distance of the actor errors' canonical types "
                             "from the baseline's"),
    "drift.severity": ("max_severity_distance",
                       "total variation distance of the actor errors' severities from the "
                       "baseline's"),
}
DRIFT_REWARD_PREFIX = "drift.reward_mean."


def metric_checks(ctx: CheckContext, config: QualityConfig) -> list[Check]:
    checks = []
    for metric in ctx.metrics:
        if metric in _NOISE:
            attribute, is_min, description = _NOISE[metric]
            limit = getattr(config.thresholds, attribute)
            checks.append(_metric(metric, "noise", limit if is_min else 0.0,
                                  None if is_min else limit, description))
        elif metric in _DRIFT:
            attribute, description = _DRIFT[metric]
            checks.append(_metric(metric, "drift", 0.0, getattr(config.drift, attribute),
                                  description))
        elif metric.startswith(DRIFT_REWARD_PREFIX):
            preset = metric.removeprefix(DRIFT_REWARD_PREFIX)
            checks.append(_metric(metric, "drift", 0.0, config.drift.max_reward_mean_shift,
                                  f"|mean reward of preset {preset} - the baseline's|"))
    return checks


def schema_checks() -> list[Check]:
    return [Check(id=f"schema.{dataset}", family="schema", frame="schema",
                  type="expect_column_values_to_be_null", kwargs={"column": "problem"},
                  where=Where(column="dataset", op="==", value=dataset),
                  description=f"every column of {model.__name__} is in every shard of "
                  f"{dataset}/ with its Arrow type (columns with defaults may be absent)")
            for dataset, model in DATASET_MODELS.items()]


def _columns_of(check: Check) -> list[str]:
    names = [check.kwargs[k] for k in ("column", "column_A", "column_B") if k in check.kwargs]
    names += list(check.kwargs.get("column_list", []))
    if check.where is not None:
        names.append(check.where.column)
    return [str(name) for name in names]


def _unusable_reason(check: Check, ctx: CheckContext) -> str | None:
    for column in _columns_of(check):
        for key, reason in ctx.unusable.items():
            frame, _, unusable = key.partition(":")
            if frame == check.frame and (not unusable or column == unusable
                                         or column.startswith(unusable + ".")):
                return reason if column.startswith("derived.") else f"column {column}: {reason}"
    return None


def build_suite(ctx: CheckContext, config: QualityConfig) -> tuple[list[Check], list[Skipped],
                                                                   list[str]]:
    """Every check for this run, the ones that cannot be computed, and notes for people."""
    checks = schema_checks()
    for layout in frame_layouts():
        checks += layout_checks(layout)
    checks += identity_checks(ctx) + reward_checks(ctx, config) + health_checks(ctx, config)
    checks += ACCOUNTING_CHECKS + metric_checks(ctx, config)
    notes: list[str] = []
    for pattern in config.disable:
        matched = [c for c in checks if fnmatch.fnmatchcase(c.id, pattern)]
        if not matched:
            notes.append(f"disable: {pattern!r} matches no expectation of this run")
        checks = [c for c in checks if c not in matched]
    for extra in config.expectations:
        if extra.frame not in ctx.frames:
            raise ConfigError(f"quality config: expectation {extra.id}: unknown frame "
                              f"{extra.frame!r} (one of {', '.join(sorted(ctx.frames))})")
        checks.append(Check(id=extra.id, family="custom", frame=extra.frame, type=extra.type,
                            kwargs=extra.kwargs, where=extra.where,
                            description=extra.description or extra.type))
    ids = [c.id for c in checks]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"quality config: expectation ids already in use: {duplicated}")

    kept: list[Check] = []
    skipped = list(ctx.skipped)
    for check in checks:
        reason = _unusable_reason(check, ctx)
        if reason is None:
            reason = next((why for pattern, why in ctx.empty.items()
                           if fnmatch.fnmatchcase(check.id, pattern)), None)
        if reason is not None and check.family != "schema":
            skipped.append(Skipped(id=check.id, family=check.family, reason=reason))
        else:
            kept.append(check)
    return kept, skipped, notes
