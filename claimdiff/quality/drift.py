"""Drift of a run against a baseline run: distributions, their distance, mean rewards.

The distance between two distributions is the total variation distance,
TVD(p, q) = 1/2 * sum_k |p_k - q_k|, in [0, 1]: the share of the errors that would have to
change category to turn one distribution into the other. It is symmetric, needs no smoothing for
categories one run never saw (unlike KL divergence), and reads the same for any number of
categories. Mean rewards are compared by their absolute difference, per preset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from claimdiff.quality.config import DriftConfig
from claimdiff.quality.expectations import DRIFT_REWARD_PREFIX, Skipped
from claimdiff.quality.frames import RunData
from claimdiff.schemas.rows import CanonicalType, RowStatus


def total_variation(p: Counter[Any], q: Counter[Any]) -> float:
    """Half the L1 distance between the two normalised distributions.

    >>> total_variation(Counter(a=2, b=2), Counter(a=1, b=1))
    0.0
    >>> total_variation(Counter(a=4), Counter(b=1))
    1.0
    >>> total_variation(Counter(a=3, b=1), Counter(a=1, b=3))
    0.5
    """
    p_total, q_total = sum(p.values()), sum(q.values())
    if not p_total or not q_total:
        raise ValueError("a distribution over nothing has no distance")
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p[k] / p_total - q[k] / q_total) for k in keys)


def _actor_errors(data: RunData, column: str) -> Counter[Any] | None:
    frame = data.frames["differences"]
    if column not in frame or "actor_erred" not in frame:
        return None
    return Counter(value for value, erred in zip(frame[column], frame["actor_erred"],
                                                 strict=True)
                   if erred is not None and bool(erred) and value is not None and value == value)


def type_distribution(data: RunData) -> Counter[str] | None:
    """Actor errors per canonical type."""
    counts = _actor_errors(data, "actor_canonical_type")
    return None if counts is None else Counter({str(k): v for k, v in counts.items()})


def severity_distribution(data: RunData) -> Counter[int] | None:
    """Actor errors per severity (1, 2, 3)."""
    counts = _actor_errors(data, "actor_severity")
    return None if counts is None else Counter({int(k): v for k, v in counts.items()})


def mean_rewards(data: RunData) -> dict[str, float]:
    """Mean value per preset over ok rows."""
    frame = data.frames["rewards.rewards"]
    if not {"name", "value", "status"} <= set(frame.columns):
        return {}
    sums: dict[str, list[float]] = {}
    for name, value, status in zip(frame["name"], frame["value"], frame["status"], strict=True):
        if status == RowStatus.OK.value and value == value:
            sums.setdefault(str(name), []).append(float(value))
    return {name: sum(values) / len(values) for name, values in sums.items() if values}


def _categories(counts: Counter[Any], order: Iterable[Any]) -> dict[str, int]:
    known = list(order)
    return {str(k): counts.get(k, 0) for k in [*known, *sorted(set(counts) - set(known), key=str)]}


def compare(run: RunData, baseline: RunData, config: DriftConfig
            ) -> tuple[list[tuple[str, float]], list[Skipped], dict[str, Any]]:
    """Drift metrics (name, value), the comparisons that could not be made, and the
    distributions themselves (for the report)."""
    metrics: list[tuple[str, float]] = []
    skipped: list[Skipped] = []
    detail: dict[str, Any] = {"baseline_run_id": baseline.run.run_id,
                              "baseline": baseline.output}
    pairs: dict[str, tuple[Counter[Any] | None, Counter[Any] | None, list[Any]]] = {
        "drift.canonical_type": (type_distribution(run), type_distribution(baseline),
                                 [t.value for t in CanonicalType]),
        "drift.severity": (severity_distribution(run), severity_distribution(baseline),
                           [1, 2, 3]),
    }
    for metric, (ours, theirs, order) in pairs.items():
        if ours is None or theirs is None:
            skipped.append(Skipped(id=metric, family="drift",
                                   reason="the error columns cannot be read in both runs"))
            continue
        detail[metric] = {"run": _categories(ours, order), "baseline": _categories(theirs, order)}
        fewest = min(sum(ours.values()), sum(theirs.values()))
        if fewest < config.min_errors:
            skipped.append(Skipped(
                id=metric, family="drift",
                reason=f"{fewest} actor errors in one run, fewer than drift.min_errors "
                f"({config.min_errors})"))
            continue
        distance = total_variation(ours, theirs)
        detail[metric]["distance"] = distance
        metrics.append((metric, distance))
    ours_mean, theirs_mean = mean_rewards(run), mean_rewards(baseline)
    detail["reward_means"] = {"run": ours_mean, "baseline": theirs_mean}
    for preset in sorted(set(ours_mean) | set(theirs_mean)):
        metric = f"{DRIFT_REWARD_PREFIX}{preset}"
        if preset not in ours_mean or preset not in theirs_mean:
            where = "the baseline" if preset not in theirs_mean else "this run"
            skipped.append(Skipped(id=metric, family="drift",
                                   reason=f"preset {preset} has no rewards in {where}"))
            continue
        metrics.append((metric, abs(ours_mean[preset] - theirs_mean[preset])))
    return metrics, skipped, detail
