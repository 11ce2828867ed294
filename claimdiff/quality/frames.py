"""A run's outputs as the tables the expectations run on (pandas, flattened, with derived columns).

Everything is read through `claimdiff.io.datasets` (fsspec), so a run on object storage is
checked the same way as a local one. Tables:

- `differences`, `rewards`, `failures`: the datasets, nested models flattened into dotted
  columns (`stats.n_differences`; an optional nested model also gets a presence column, `stats`);
- `differences.outcomes`, `rewards.rewards`: one row per list item, with the row's identity;
- `schema`: one row per (dataset, shard, column): expected and observed Arrow type, problem;
- `rows`: one row per input row (ok reward rows and failure rows) with failure indicators;
- `images`: one row per judged image, with `zero_differences`;
- `accounting`: run.json's counts next to the counts recomputed from the shards;
- `metrics`: judge-noise statistics from run.json and drift distances from a baseline.

Large free-text columns no check reads (raw answers, raw inputs) are left unread.
"""

from __future__ import annotations

import json
import re
import typing
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ValidationError

from claimdiff.errors import UnreadableRunError
from claimdiff.io.datasets import has_dataset, read_run_manifest, read_shard, shard_schema, shards
from claimdiff.pipelines import outputs
from claimdiff.quality.expectations import (
    DATASET_MODELS,
    IDENTITY,
    NOISE_STATS,
    FrameLayout,
    Skipped,
    _is_model,
    _list_item,
    _unwrap_optional,
    frame_layouts,
    table_of,
)
from claimdiff.schemas.arrow import arrow_schema, arrow_type
from claimdiff.schemas.rows import Outcome, RowStatus, reward_row_model
from claimdiff.schemas.run import Accounting, RunManifest

if TYPE_CHECKING:
    import pandas as pd

NOT_READ = frozenset({"raw_answer", "verify_answers", "raw_input", "raw_output"})
_SPAN_EDGES = " \t\r\n\"'“”‘’«».,;:!?()[]"


@dataclass
class DatasetRead:
    table: pa.Table
    shards: int
    schema_rows: list[dict[str, Any]]
    unusable: dict[str, str]  # column (dotted) -> why its values cannot be checked


@dataclass
class RunData:
    """One run read back: run.json, the tables, and what could not be computed."""

    output: str
    run: RunManifest
    frames: dict[str, pd.DataFrame]
    shards: dict[str, int]
    unusable: dict[str, str] = field(default_factory=dict)  # "frame:column" -> why
    empty: dict[str, str] = field(default_factory=dict)  # check id pattern -> why undefined
    skipped: list[Skipped] = field(default_factory=list)
    recomputed: Accounting | None = None
    metrics: list[tuple[str, float]] = field(default_factory=list)  # rows of `metrics`

    @property
    def presets(self) -> list[str]:
        rewards = self.run.config.get("rewards") if isinstance(self.run.config, dict) else None
        presets = rewards.get("presets") if isinstance(rewards, dict) else None
        if not isinstance(presets, list):
            return []
        return [str(p["name"]) for p in presets if isinstance(p, dict) and "name" in p]

    @property
    def primary(self) -> str | None:
        rewards = self.run.config.get("rewards") if isinstance(self.run.config, dict) else None
        primary = rewards.get("primary") if isinstance(rewards, dict) else None
        return str(primary) if primary is not None else None

    def tradeoff_lambdas(self) -> dict[str, float]:
        """Tradeoff presets of the run's configuration: name -> lambda (a sweep if >= 2)."""
        rewards = self.run.config.get("rewards") if isinstance(self.run.config, dict) else None
        presets = rewards.get("presets") if isinstance(rewards, dict) else None
        found: dict[str, float] = {}
        for preset in presets if isinstance(presets, list) else []:
            if isinstance(preset, dict) and preset.get("kind") == "tradeoff" and "lam" in preset:
                found[str(preset["name"])] = float(preset["lam"])
        return found


# ---------------------------------------------------------------- schema


def type_problem(annotation: Any, observed: pa.DataType) -> tuple[str | None, list[str]]:
    """Why an observed Arrow type does not hold a field, and nested fields that are absent but
    have defaults (older runs). Nested models may gain fields with defaults; nullability flags
    are not compared (the not-null checks look at the values)."""
    expected = arrow_type(annotation)
    if observed.equals(expected):
        return None, []
    inner, _ = _unwrap_optional(annotation)
    if typing.get_origin(inner) is list and pa.types.is_list(observed):
        (item,) = typing.get_args(inner)
        problem, nested = type_problem(item, observed.value_type)
        return (f"items: {problem}" if problem else None), [f"[].{a}" for a in nested]
    if _is_model(inner) and pa.types.is_struct(observed):
        absent: list[str] = []
        for name, info in inner.model_fields.items():
            index = observed.get_field_index(name)
            if index < 0:
                if info.is_required():
                    return f"field {name} missing", []
                absent.append(name)
                continue
            problem, deeper = type_problem(info.annotation, observed.field(index).type)
            if problem:
                return f"{name}: {problem}", []
            absent += [f"{name}.{d}" for d in deeper]
        return None, absent
    return f"expected {expected}, found {observed}", []


def _castable(observed: pa.DataType, expected: pa.DataType) -> bool:
    try:
        pa.array([], type=observed).cast(expected)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return True


def _model_of(output: str, dataset: str) -> type[BaseModel]:
    """The row model a dataset was written with: `rewards/` has one struct field per preset the
    run configured (`preset_values`), so its model is built from the run's presets."""
    model = DATASET_MODELS[dataset]
    if dataset != "rewards":
        return model
    try:
        presets = read_run_manifest(output).config["rewards"]["presets"]
        return reward_row_model([str(preset["name"]) for preset in presets])
    except (KeyError, TypeError):
        return model


def read_dataset(output: str, dataset: str) -> DatasetRead:
    """Every shard of one dataset, conformed to the model's Arrow schema where it can be."""
    model = _model_of(output, dataset)
    expected = arrow_schema(model)
    paths = shards(output, dataset)
    schema_rows: list[dict[str, Any]] = []
    unusable: dict[str, str] = {}
    try:
        observed_schemas = [shard_schema(output, path) for path in paths]
    except (OSError, pa.ArrowException) as exc:
        raise UnreadableRunError(f"{dataset}/: a shard is not readable Parquet: {exc}") from exc
    for path, observed in zip(paths, observed_schemas, strict=True):
        shard = path.rsplit("/", 1)[-1]
        for expected_field in expected:
            name = expected_field.name
            info = model.model_fields[name]
            index = observed.get_field_index(name)
            row = {"dataset": dataset, "shard": shard, "column": name,
                   "expected": str(expected_field.type), "observed": "(absent)", "problem": None}
            if index < 0:
                if info.is_required():
                    row["problem"] = f"{name}: missing from {shard}"
                unusable.setdefault(name, f"absent from shard {shard}")
            else:
                observed_type = observed.field(index).type
                row["observed"] = str(observed_type)
                problem, absent = type_problem(info.annotation, observed_type)
                if problem is None and not _castable(observed_type, expected_field.type):
                    problem = f"cannot be read as {expected_field.type}"
                if problem is not None:
                    row["problem"] = f"{name}: {problem} (shard {shard})"
                    unusable.setdefault(name, f"wrong type in shard {shard}")
                for nested in absent:
                    unusable.setdefault(f"{name}.{nested}",
                                        f"absent from shard {shard} (an older run)")
            schema_rows.append(row)
        for extra in observed:
            if extra.name not in expected.names:
                schema_rows.append({"dataset": dataset, "shard": shard, "column": extra.name,
                                    "expected": "(not in the model)",
                                    "observed": str(extra.type), "problem": None})
    columns = [f.name for f in expected if f.name not in NOT_READ and f.name not in unusable]
    target = pa.schema([pa.field(name, expected.field(name).type) for name in columns])
    tables = []
    for path in paths:
        try:
            table = read_shard(output, path, columns)
        except (OSError, pa.ArrowException) as exc:
            raise UnreadableRunError(f"{dataset}/{path.rsplit('/', 1)[-1]}: {exc}") from exc
        arrays = [table[name].cast(target.field(name).type) for name in columns]
        tables.append(pa.Table.from_arrays(arrays, schema=target))
    table = pa.concat_tables(tables) if tables else target.empty_table()
    return DatasetRead(table, len(paths), schema_rows, unusable)


# ---------------------------------------------------------------- tables


def _flatten_into(columns: dict[str, Any], name: str, array: pa.ChunkedArray | pa.Array,
                  annotation: Any) -> None:
    """Required nested models as dotted columns; optional ones have tables of their own (lists
    stay, as lists, for their not-null check)."""
    if table_of(annotation) is not None and _list_item(annotation) is None:
        return
    inner, _ = _unwrap_optional(annotation)
    if _is_model(inner) and pa.types.is_struct(array.type):
        for child, info in inner.model_fields.items():
            index = array.type.get_field_index(child)
            if index >= 0:
                _flatten_into(columns, f"{name}.{child}" if name else child,
                              pc.struct_field(array, [index]), info.annotation)
        return
    columns[name] = array


def _to_pandas(array: pa.ChunkedArray | pa.Array) -> Any:
    series = array.to_pandas()
    if pa.types.is_boolean(array.type):
        return series.astype(object)
    return series


def _column(table: pa.Table, dotted: str) -> pa.Array:
    """A column, or a field of a (required, flattened) nested model: `decoding.seed`."""
    first, *rest = dotted.split(".")
    array: Any = table[first].combine_chunks()
    for part in rest:
        array = pc.struct_field(array, [array.type.get_field_index(part)])
    return array


def _items(table: pa.Table, keys: list[str], column: str, annotation: Any) -> pa.Table:
    """The table of one part of the rows: present optional models, or list items, each with
    the identity of its row; a model's fields become columns."""
    array = _column(table, column)
    if _list_item(annotation) is not None:
        base = table.select(keys).take(pc.list_parent_indices(array))
        values = pc.list_flatten(array)
    else:
        present = pc.is_valid(array)
        base = table.select(keys).filter(present)
        values = array.filter(present)
    item = table_of(annotation)
    if _is_model(item) and pa.types.is_struct(values.type):
        children = {values.type.field(i).name: pc.struct_field(values, [i])
                    for i in range(values.type.num_fields)}
    else:
        children = {column.rsplit(".", 1)[-1]: values}
    for name, child in children.items():
        base = base.append_column(name, child)
    return base


def layout_table(table: pa.Table, layout: FrameLayout) -> pa.Table:
    """Follow a layout's path from the dataset's table to the table of its items."""
    keys = [k for k in (*IDENTITY[layout.dataset], "status") if k in table.column_names]
    model: Any = DATASET_MODELS[layout.dataset]
    for step in layout.path:
        if step.split(".")[0] not in table.column_names:  # unreadable in this run
            return pa.table({k: table[k].slice(0, 0) for k in keys})
        annotation = _annotation_at(model, step)
        table = _items(table, keys, step, annotation)
        model = table_of(annotation)
    return table


def _annotation_at(model: Any, dotted: str) -> Any:
    annotation: Any = model
    for part in dotted.split("."):
        inner, _ = _unwrap_optional(annotation)
        annotation = inner.model_fields[part].annotation
    return annotation


def to_frame(table: pa.Table, item: Any) -> pd.DataFrame:
    """A table as pandas: model fields flattened (see `_flatten_into`), identity keys kept."""
    import pandas as pd

    columns: dict[str, Any] = {}
    fields = item.model_fields if _is_model(item) else {}
    for name in table.column_names:
        if name in fields:
            _flatten_into(columns, name, table[name], fields[name].annotation)
        else:
            columns[name] = table[name]
    return pd.DataFrame({name: _to_pandas(array) for name, array in columns.items()})


# ---------------------------------------------------------------- derived columns


def row_key(manifest: Any, row_index: Any) -> tuple[str, int] | None:
    if manifest is None or row_index is None or row_index != row_index:  # NaN
        return None
    return str(manifest), int(row_index)


def row_keys(frame: pd.DataFrame) -> list[tuple[str, int] | None]:
    return [row_key(m, i) for m, i in zip(frame["manifest"], frame["row_index"], strict=True)]


def normalise_text(text: str) -> str:
    """For the span check: compatibility forms, case and spacing ignored."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", " ", text).strip()


def span_found(span: Any, text: Any) -> bool:
    """Whether a quoted span occurs in the caption it quotes (empty spans are not quotes).

    >>> span_found("Two  Dogs.", "There are two dogs on a sofa.")
    True
    >>> span_found("three cats", "There are two dogs on a sofa.")
    False
    """
    if not isinstance(span, str):  # null (pandas reads a missing string as NaN)
        return True
    needle = normalise_text(span).strip(_SPAN_EDGES)
    if not needle:
        return True
    return needle in normalise_text(text if isinstance(text, str) else "")


def _has(frame: pd.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


def _derive_differences(data: RunData) -> None:
    differences, rewards = data.frames["differences"], data.frames["rewards"]
    outcomes = data.frames["differences.outcomes"]
    if _has(differences, "manifest", "row_index", "difference_index") and "outcomes" in outcomes:
        said: dict[tuple[Any, ...], set[str]] = defaultdict(set)
        for manifest, row, index, outcome in zip(
                outcomes["manifest"], outcomes["row_index"], outcomes["difference_index"],
                outcomes["outcomes"], strict=True):
            said[(row_key(manifest, row), int(index))].add(str(outcome))
        keys = [(k, int(i)) for k, i in zip(row_keys(differences), differences["difference_index"],
                                           strict=True)]
        for name, outcome in (("spurious", Outcome.SPURIOUS),
                              ("unverifiable", Outcome.UNVERIFIABLE)):
            differences[f"derived.{name}"] = [float(outcome.value in said[k]) for k in keys]
    else:
        for name in ("spurious", "unverifiable"):
            data.unusable[f"differences:derived.{name}"] = "outcomes cannot be read"
    if _has(differences, "manifest", "row_index") and _has(rewards, "manifest", "row_index",
                                                            "status"):
        ok = {k for k, status in zip(row_keys(rewards), rewards["status"], strict=True)
              if status == RowStatus.OK.value}
        differences["derived.has_reward_row"] = [k in ok for k in row_keys(differences)]
    else:
        data.unusable["differences:derived.has_reward_row"] = "row identities cannot be read"


def _derive_rewards(data: RunData) -> None:
    differences, rewards, failures = (data.frames[n] for n in ("differences", "rewards",
                                                                "failures"))
    if _has(rewards, "manifest", "row_index") and _has(failures, "manifest", "row_index"):
        failed = {k for k in row_keys(failures) if k is not None}
        rewards["derived.has_failure_row"] = [k in failed for k in row_keys(rewards)]
    else:
        data.unusable["rewards:derived.has_failure_row"] = "row identities cannot be read"
    stats = data.frames["rewards.stats"]
    if "judge_attempts" in stats:
        stats["derived.parse_retried"] = (stats["judge_attempts"] > 1).astype(float)
    else:
        data.unusable["rewards.stats:derived.parse_retried"] = "judge_attempts cannot be read"

    needed = ("caption", "reference", "manifest", "row_index", "status")
    if not (_has(rewards, *needed) and _has(differences, "manifest", "row_index",
                                            "actor_span", "reference_span")):
        missing = [c for c in needed if c not in rewards]
        data.unusable["rewards:derived.span_mismatch"] = (
            f"{', '.join(missing) or 'spans'} cannot be read (runs before rewards/ carried "
            "the caption have no span check)")
        return
    texts = dict(zip(row_keys(rewards), zip(rewards["caption"], rewards["reference"],
                                         strict=True), strict=True))
    mismatched: set[tuple[str, int] | None] = set()
    for key, actor, reference in zip(row_keys(differences), differences["actor_span"],
                                     differences["reference_span"], strict=True):
        caption, ref_text = texts.get(key, (None, None))
        if not (span_found(actor, caption) and span_found(reference, ref_text)):
            mismatched.add(key)
    rewards["derived.span_mismatch"] = [
        float(key in mismatched) if status == RowStatus.OK.value else float("nan")
        for key, status in zip(row_keys(rewards), rewards["status"], strict=True)]


def _rows_frame(data: RunData, stages: Iterable[str], reasons: Iterable[str]) -> pd.DataFrame:
    """One row per input row: ok reward rows, then failure rows."""
    import pandas as pd

    rewards, failures = data.frames["rewards"], data.frames["failures"]
    ok = int((rewards["status"] == RowStatus.OK.value).sum()) if "status" in rewards else 0
    stage = [None] * ok + [str(s) for s in failures.get("stage", [])]
    reason = [None] * ok + [str(r) for r in failures.get("error_class", [])]
    frame = pd.DataFrame({"failed": [0.0] * ok + [1.0] * (len(stage) - ok),
                          "stage": stage, "reason": reason})
    for name in stages:
        frame[f"failed_stage.{name}"] = (frame["stage"] == name).astype(float)
    for name in reasons:
        frame[f"failed_reason.{name}"] = (frame["reason"] == name).astype(float)
    return frame


def _images_frame(data: RunData) -> pd.DataFrame:
    import pandas as pd

    rewards, differences = data.frames["rewards"], data.frames["differences"]
    if not (_has(rewards, "status", "manifest", "row_index", "image_uri")
            and _has(differences, "manifest", "row_index")):
        data.unusable["images:zero_differences"] = "row identities cannot be read"
        return pd.DataFrame({"image": [], "zero_differences": []})
    counts = Counter(row_keys(differences))
    shas = rewards["image_sha256"] if "image_sha256" in rewards else [None] * len(rewards)
    found: dict[str, int] = defaultdict(int)
    for key, status, sha, uri in zip(row_keys(rewards), rewards["status"], shas,
                                     rewards["image_uri"], strict=True):
        if status == RowStatus.OK.value:
            found[str(sha or uri)] += counts.get(key, 0)
    return pd.DataFrame({"image": list(found),
                         "zero_differences": [float(n == 0) for n in found.values()]})


def _accounting_frame(run: RunManifest, shards: Accounting | None) -> pd.DataFrame:
    import pandas as pd

    rows: list[tuple[str, str, Any, Any]] = []
    if shards is not None:
        acc = run.accounting
        for name in ("rows_judged", "rows_failed", "rewards_failed", "differences",
                     "duplicate_rows", "failed_rewards_without_failure",
                     "failures_without_reward", "failures_by_stage", "failures_by_reason"):
            rows.append(("run_json", name, getattr(acc, name), getattr(shards, name)))
        rows += [
            ("balance", "rows_in = rows_judged + rows_failed", acc.rows_in,
             shards.rows_judged + shards.rows_failed),
            ("balance", "input rows accounted for twice", 0, shards.duplicate_rows),
            ("balance", "failed reward rows without a failure row", 0,
             shards.failed_rewards_without_failure),
            ("balance", "validated failures without a null reward row", 0,
             shards.failures_without_reward),
            ("balance", "balanced", True, shards.balanced),
        ]
    # one text type per column: counts, dicts and flags compare as their JSON
    return pd.DataFrame({
        "kind": [r[0] for r in rows], "quantity": [r[1] for r in rows],
        "run_json": [json.dumps(r[2], sort_keys=True) for r in rows],
        "shards": [json.dumps(r[3], sort_keys=True) for r in rows]})


def _noise_metrics(data: RunData) -> list[tuple[str, float]]:
    metrics = []
    for metric, stat in NOISE_STATS.items():
        if stat not in data.run.judge_stats:
            data.skipped.append(Skipped(id=metric, family="noise",
                                        reason="not measured by this run"))
            continue
        value = data.run.judge_stats[stat]
        if value is None:
            data.skipped.append(Skipped(id=metric, family="noise",
                                        reason="measured over nothing (null in run.json)"))
            continue
        metrics.append((metric, float(value)))
    return metrics


def metrics_frame(metrics: list[tuple[str, float]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({"metric": [m for m, _ in metrics], "value": [v for _, v in metrics]})


# ---------------------------------------------------------------- the whole run


def read_manifest_or_fail(output: str) -> RunManifest:
    try:
        return outputs.read_run_manifest(output)
    except FileNotFoundError as exc:
        raise UnreadableRunError(f"{output}: no run.json (not a claimdiff run folder)") from exc
    except ValidationError as exc:
        raise UnreadableRunError(f"{output}/run.json is not a run manifest: "
                                 f"{exc.error_count()} errors, first: {exc.errors()[0]['msg']} "
                                 f"at {'.'.join(map(str, exc.errors()[0]['loc']))}") from exc
    except (OSError, ValueError) as exc:
        raise UnreadableRunError(f"{output}/run.json cannot be read: {exc}") from exc


def read_run(output: str, *, stages: Iterable[str] = (),
             reasons: Iterable[str] = ()) -> RunData:
    """Read a run's run.json and shards into the expectation tables.

    Raises `UnreadableRunError` when run.json or a dataset folder is missing or a shard is not
    Parquet; anything readable but wrong is left for the expectations to find.
    """
    output = output.rstrip("/")
    run = read_manifest_or_fail(output)
    for dataset in DATASET_MODELS:
        try:
            present = has_dataset(output, dataset)
        except OSError as exc:
            raise UnreadableRunError(f"{output}/{dataset}/: {exc}") from exc
        if not present:
            raise UnreadableRunError(f"{output}/{dataset}/ is missing (not a complete run)")
    reads = {dataset: read_dataset(output, dataset) for dataset in DATASET_MODELS}
    import pandas as pd

    frames: dict[str, pd.DataFrame] = {}
    data = RunData(output=output, run=run, frames=frames,
                   shards={d: r.shards for d, r in reads.items()})
    for layout in frame_layouts():
        read = reads[layout.dataset]
        frames[layout.name] = to_frame(layout_table(read.table, layout), layout.item)
        path = ".".join(layout.path)
        for column, reason in read.unusable.items():
            if not path:
                data.unusable[f"{layout.name}:{column}"] = reason
            elif column == path or path.startswith(f"{column}."):
                data.unusable[f"{layout.name}:"] = reason  # the whole table
            elif column.startswith(f"{path}."):
                nested = column.removeprefix(f"{path}.").removeprefix("[].")
                data.unusable[f"{layout.name}:{nested}"] = reason
    frames["schema"] = pd.DataFrame([row for r in reads.values() for row in r.schema_rows],
                                    columns=["dataset", "shard", "column", "expected",
                                             "observed", "problem"])
    _derive_differences(data)
    _derive_rewards(data)
    frames["rows"] = _rows_frame(data, stages, reasons)
    frames["images"] = _images_frame(data)
    try:
        data.recomputed = outputs.account(output, run.accounting.rows_in)
    except (KeyError, ValueError, OSError, pa.ArrowException) as exc:
        data.unusable["accounting:"] = f"the shards cannot be accounted: {exc}"
    frames["accounting"] = _accounting_frame(run, data.recomputed)
    data.metrics = _noise_metrics(data)
    frames["metrics"] = metrics_frame(data.metrics)

    ok_rows = int((frames["rewards"].get("status") == RowStatus.OK.value).sum()) \
        if "status" in frames["rewards"] else 0
    if len(frames["rows"]) == 0:
        data.empty["health.failure_share*"] = "no input rows"
    if ok_rows == 0:
        data.empty["health.parse_retry_share"] = "no judged rows"
        data.empty["health.span_mismatch_share"] = "no judged rows"
    if len(frames["differences"]) == 0:
        data.empty["health.spurious_share"] = "no differences"
        data.empty["health.unverifiable_share"] = "no differences"
    if len(frames["images"]) == 0:
        data.empty["health.zero_difference_images"] = "no judged images"
    return data
