"""The report's plots, drawn with matplotlib (Agg, no pyplot state) into PNG bytes.

- outcomes per canonical type (the actor's type where it erred, else the reference's);
- severity histogram of actor and reference errors;
- hallucinations vs omissions per caption, per group (`--by`: a column or a metadata key);
- reward distributions per preset;
- the lambda frontier, when the run has a sweep (two or more tradeoff presets with distinct
  lambda): for each lambda, the captions of each sample are weighted by their reward
  (normalised within the sample: the distribution a reward-weighted update moves toward) and
  the weighted hallucinations and omissions per caption, averaged over samples, are plotted;
- failure reasons, by stage and error class.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claimdiff.errors import MissingExtraError
from claimdiff.quality.frames import RunData, row_key, row_keys
from claimdiff.schemas.rows import Outcome, RowStatus

MAX_GROUPS = 20
_OUTCOME_COLOURS = {
    Outcome.ACTOR_HALLUCINATION.value: "#c0392b", Outcome.ACTOR_OMISSION.value: "#e67e22",
    Outcome.ACTOR_EXTRA_CORRECT.value: "#27ae60", Outcome.REFERENCE_HALLUCINATION.value: "#8e44ad",
    Outcome.REFERENCE_ERROR.value: "#2980b9", Outcome.SPURIOUS.value: "#95a5a6",
    Outcome.UNVERIFIABLE.value: "#7f8c8d",
}


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    png: bytes
    caption: str = ""


def _figure(width: float = 7.0, height: float = 3.6) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtraError("matplotlib", "report") from exc
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN is missing


def outcomes_by_type(data: RunData) -> Plot | None:
    differences, outcomes = data.frames["differences"], data.frames["differences.outcomes"]
    needed = {"actor_canonical_type", "reference_canonical_type", "difference_index"}
    if not needed <= set(differences.columns) or "outcomes" not in outcomes or not len(outcomes):
        return None
    types = {}
    for key, index, actor, reference in zip(
            row_keys(differences), differences["difference_index"],
            differences["actor_canonical_type"], differences["reference_canonical_type"],
            strict=True):
        types[(key, int(index))] = str(actor if _present(actor) else
                                       reference if _present(reference) else "(untyped)")
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for manifest, row, index, outcome in zip(outcomes["manifest"], outcomes["row_index"],
                                             outcomes["difference_index"], outcomes["outcomes"],
                                             strict=True):
        counts[types.get((row_key(manifest, row), int(index)), "(untyped)")][str(outcome)] += 1
    names = sorted(counts, key=lambda n: sum(counts[n].values()))
    figure = _figure(7.0, max(2.4, 0.32 * len(names) + 1.2))
    axes = figure.subplots()
    left = [0] * len(names)
    for outcome in [o.value for o in Outcome]:
        widths = [counts[n][outcome] for n in names]
        if any(widths):
            axes.barh(names, widths, left=left, label=outcome,
                      color=_OUTCOME_COLOURS[outcome])
            left = [a + b for a, b in zip(left, widths, strict=True)]
    axes.set_xlabel("differences")
    axes.legend(fontsize=7, loc="lower right")
    return Plot("outcomes-by-type", "Outcomes per canonical type", _png(figure),
                "each difference counted once per outcome it has")


def severity_histogram(data: RunData) -> Plot | None:
    differences = data.frames["differences"]
    sides = [s for s in ("actor", "reference") if f"{s}_severity" in differences]
    if not sides or not len(differences):
        return None
    figure = _figure(5.0, 3.0)
    axes = figure.subplots()
    for offset, side in enumerate(sides):
        counts = Counter(int(v) for v in differences[f"{side}_severity"] if _present(v))
        axes.bar([s + (offset - 0.5) * 0.4 for s in (1, 2, 3)],
                 [counts.get(s, 0) for s in (1, 2, 3)], width=0.4, label=f"{side} errors")
    axes.set_xticks([1, 2, 3], ["1 peripheral", "2 secondary", "3 primary"])
    axes.set_ylabel("errors")
    axes.legend(fontsize=8)
    return Plot("severity", "Severity of errors", _png(figure))


def group_of(row_value: Any, metadata: Any, by: str) -> str:
    if _present(row_value):
        return str(row_value)
    try:
        parsed = json.loads(metadata) if isinstance(metadata, str) else {}
    except ValueError:
        parsed = {}
    value = parsed.get(by) if isinstance(parsed, dict) else None
    return "?" if value is None else str(value)


def _groups(data: RunData, by: str) -> dict[tuple[str, int] | None, str]:
    rewards = data.frames["rewards"]
    if not {"manifest", "row_index"} <= set(rewards.columns):
        return {}
    values = rewards[by] if by in rewards else [None] * len(rewards)
    metadata = rewards["metadata"] if "metadata" in rewards else [None] * len(rewards)
    return {key: group_of(value, meta, by)
            for key, value, meta in zip(row_keys(rewards), values, metadata, strict=True)}


def hallucination_omission(data: RunData, by: str) -> Plot | None:
    stats = data.frames["rewards.stats"]
    if not {"n_actor_hallucination", "n_actor_omission"} <= set(stats.columns) or not len(stats):
        return None
    groups = _groups(data, by)
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for key, hallucinated, omitted in zip(row_keys(stats), stats["n_actor_hallucination"],
                                          stats["n_actor_omission"], strict=True):
        entry = sums[groups.get(key, "?")]
        entry[0] += float(hallucinated)
        entry[1] += float(omitted)
        entry[2] += 1
    names = sorted(sums, key=lambda n: -sums[n][2])
    shown = sorted(names[:MAX_GROUPS])
    figure = _figure(7.0, max(2.4, 0.3 * len(shown) + 1.2))
    axes = figure.subplots()
    positions = list(range(len(shown)))
    axes.barh([p + 0.2 for p in positions], [sums[n][0] / sums[n][2] for n in shown], height=0.4,
              label="hallucinations", color=_OUTCOME_COLOURS["actor_hallucination"])
    axes.barh([p - 0.2 for p in positions], [sums[n][1] / sums[n][2] for n in shown], height=0.4,
              label="omissions", color=_OUTCOME_COLOURS["actor_omission"])
    axes.set_yticks(positions, [f"{n} ({int(sums[n][2])})" for n in shown], fontsize=7)
    axes.set_xlabel("mean per caption")
    axes.legend(fontsize=8)
    caption = f"grouped by {by}; caption counts in brackets"
    if len(names) > MAX_GROUPS:
        caption += f"; the {MAX_GROUPS} largest of {len(names)} groups"
    return Plot("hallucination-omission", f"Hallucinations vs omissions per {by}",
                _png(figure), caption)


def _reward_values(data: RunData) -> dict[str, list[tuple[tuple[str, int] | None, float]]]:
    frame = data.frames["rewards.rewards"]
    values: dict[str, list[tuple[tuple[str, int] | None, float]]] = defaultdict(list)
    if not {"name", "value", "status"} <= set(frame.columns):
        return values
    for key, name, value, status in zip(row_keys(frame), frame["name"], frame["value"],
                                        frame["status"], strict=True):
        if status == RowStatus.OK.value and _present(value):
            values[str(name)].append((key, float(value)))
    return values


def reward_distributions(data: RunData) -> Plot | None:
    values = _reward_values(data)
    if not values:
        return None
    figure = _figure(7.0, 3.2)
    axes = figure.subplots()
    everything = [v for pairs in values.values() for _, v in pairs]
    low, high = min(everything), max(everything)
    bins = [low + (high - low) * i / 20 for i in range(21)] if high > low else 10
    for name in sorted(values):
        axes.hist([v for _, v in values[name]], bins=bins, histtype="step", linewidth=1.5,
                  label=f"{name} (mean {sum(v for _, v in values[name]) / len(values[name]):.3f})")
    axes.set_xlabel("reward")
    axes.set_ylabel("captions")
    axes.legend(fontsize=7)
    return Plot("rewards", "Reward distributions per preset", _png(figure))


def frontier_points(data: RunData) -> list[tuple[float, float, float]]:
    """(lambda, hallucinations, omissions) per tradeoff preset of a sweep, by lambda: each
    sample's captions weighted by their reward (normalised within the sample), averaged over
    samples. Empty without a sweep."""
    lambdas = data.tradeoff_lambdas()
    values = _reward_values(data)
    stats = data.frames["rewards.stats"]
    rewards = data.frames["rewards"]
    sweep = {name: lam for name, lam in lambdas.items() if values.get(name)}
    if len(set(sweep.values())) < 2 or "sample_id" not in rewards or not len(stats):
        return []
    samples = dict(zip(row_keys(rewards), rewards["sample_id"], strict=True))
    errors = {key: (float(h), float(o)) for key, h, o in zip(
        row_keys(stats), stats["n_actor_hallucination"], stats["n_actor_omission"], strict=True)}
    points = []
    for name, lam in sorted(sweep.items(), key=lambda item: item[1]):
        by_sample: dict[Any, list[tuple[float, tuple[float, float]]]] = defaultdict(list)
        for key, value in values[name]:
            if key in errors and key in samples:
                by_sample[samples[key]].append((value, errors[key]))
        weighted = [0.0, 0.0]
        counted = 0
        for captions in by_sample.values():
            total = sum(value for value, _ in captions)
            if total <= 0 or any(value < 0 for value, _ in captions):
                continue  # no distribution over this sample's captions
            weighted[0] += sum(v * h for v, (h, _) in captions) / total
            weighted[1] += sum(v * o for v, (_, o) in captions) / total
            counted += 1
        if counted:
            points.append((lam, weighted[0] / counted, weighted[1] / counted))
    return points


def lambda_frontier(data: RunData) -> Plot | None:
    points = frontier_points(data)
    if len(points) < 2:
        return None
    figure = _figure(5.5, 3.6)
    axes = figure.subplots()
    axes.plot([p[2] for p in points], [p[1] for p in points], marker="o")
    for lam, hallucinated, omitted in points:
        axes.annotate(f"λ={lam:g}", (omitted, hallucinated), fontsize=7,
                      xytext=(4, 4), textcoords="offset points")
    axes.set_xlabel("omissions per caption (reward-weighted)")
    axes.set_ylabel("hallucinations per caption (reward-weighted)")
    return Plot("lambda-frontier", "λ frontier (reward-weighted errors per sample)",
                _png(figure), "for each λ preset, each sample's captions weighted by their "
                "reward (what a reward-weighted update moves toward)")


def failure_reasons(data: RunData) -> Plot | None:
    failures = data.frames["failures"]
    if not len(failures) or not {"stage", "error_class"} <= set(failures.columns):
        return None
    counts = Counter(f"{stage}: {reason}" for stage, reason in zip(
        failures["stage"], failures["error_class"], strict=True))
    names = sorted(counts, key=lambda n: counts[n])
    figure = _figure(7.0, max(2.0, 0.3 * len(names) + 1.0))
    axes = figure.subplots()
    axes.barh(names, [counts[n] for n in names], color="#7f8c8d")
    axes.set_xlabel("failed input rows")
    return Plot("failure-reasons", "Failure reasons (stage: error class)", _png(figure))


def render_plots(data: RunData, *, by: str = "actor_id") -> tuple[list[Plot], list[str]]:
    """Every plot the run has data for, and a note for each one it has not."""
    makers: list[tuple[str, Callable[[], Plot | None]]] = [
        ("outcomes per canonical type: no differences", lambda: outcomes_by_type(data)),
        ("severity histogram: no differences", lambda: severity_histogram(data)),
        ("hallucinations vs omissions: no judged rows", lambda: hallucination_omission(data, by)),
        ("reward distributions: no rewards", lambda: reward_distributions(data)),
        ("λ frontier: no sweep (fewer than two tradeoff presets with distinct λ)",
         lambda: lambda_frontier(data)),
        ("failure reasons: no failures", lambda: failure_reasons(data)),
    ]
    plots, notes = [], []
    for note, make in makers:
        plot = make()
        if plot is None:
            notes.append(note)
        else:
            plots.append(plot)
    return plots, notes
