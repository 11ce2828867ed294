"""`claimdiff sweep`: the hallucination / omission frontier of a run, over the lambda presets.

For each operating point lam, each image (a sample: one image with one reference) prefers the
caption with the lowest `lambda` cost (`rewards.presets.lambda_cost`: lam times its
hallucinations plus 1 - lam times its omissions, each per 100 words; a tie goes to the caption
with fewer errors in all, then to the lower actor id and row index). The preferred captions'
rates are reported per image (mean hallucinations and omissions per caption, severity-weighted
where the preset is) and per 100 words (the means of the rates the preset trades:
hallucinations per 100 words of the caption, omissions per 100 words of the reference).

Raising lam never raises the preferred captions' hallucinations per 100 words nor lowers their
omissions per 100 words (nor per image: the reference is the same within an image), image by
image: for lam1 < lam2 preferring c1 and c2, optimality gives lam1 (h1 - h2) <= (1 - lam1)
(o2 - o1) and lam2 (h1 - h2) >= (1 - lam2) (o2 - o1), which leave no room for h2 > h1 (nor,
likewise, for o2 < o1). The credit for extra details (`extra_credit`) can break this; the
frontier is drawn without it by default.

Other presets (the relative and, where the run has holistic scores, the holistic preset) are
placed on the same axes: each image prefers its caption with the highest value of that preset.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from claimdiff.config import ClaimdiffConfig, LambdaPreset, Preset
from claimdiff.errors import ConfigError, MissingExtraError
from claimdiff.rewards.presets import lambda_cost, lambda_counts, lambda_rates, reward_value
from claimdiff.rewards.recompute import RecomputedRow
from claimdiff.schemas.rows import RewardStats, RowStatus

MAX_POINTS = 1001


def lambda_grid(spec: str) -> list[float]:
    """`start:stop:step` (both ends included) or a comma list, each in [0, 1].

    >>> lambda_grid("0:1:0.25")
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> lambda_grid("0.2,0.8")
    [0.2, 0.8]
    """
    try:
        if ":" in spec:
            start, stop, step = (float(part) for part in spec.split(":"))
            if step <= 0 or stop < start:
                raise ConfigError(f"--lambda {spec!r}: need start <= stop and a step above 0")
            count = math.floor((stop - start) / step + 1e-9) + 1
            if count > MAX_POINTS:
                raise ConfigError(f"--lambda {spec!r}: more than {MAX_POINTS} points")
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(part) for part in spec.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"--lambda {spec!r}: expected start:stop:step or a list, "
                          "e.g. 0:1:0.1") from exc
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ConfigError(f"--lambda {spec!r}: every value must be in [0, 1]")
    return sorted(set(values))


@dataclass(frozen=True)
class _Caption:
    sample_id: str
    actor_id: str
    row_index: int
    stats: RewardStats


@dataclass(frozen=True)
class FrontierPoint:
    """The preferred captions at one operating point (or of one other preset)."""

    label: str
    lam: float | None
    images: int
    hallucinations_per_image: float
    omissions_per_image: float
    hallucinations_per_100_words: float
    omissions_per_100_words: float
    changed: int | None = None  # images whose preference changed from the previous point


@dataclass
class SweepReport:
    points: list[FrontierPoint]
    presets: list[FrontierPoint]
    images: int
    captions: int
    skipped: dict[str, int] = field(default_factory=dict)


def _images(rows: Sequence[RecomputedRow], measure: LambdaPreset
            ) -> tuple[dict[str, list[_Caption]], dict[str, int]]:
    images: dict[str, list[_Caption]] = defaultdict(list)
    skipped = {"failed": 0, "no_counts": 0}
    for item in rows:
        if item.row.status is not RowStatus.OK or item.stats is None:
            skipped["failed"] += 1
            continue
        if lambda_rates(item.stats, measure) is None:
            skipped["no_counts"] += 1  # labels counting on a row without labels
            continue
        images[item.row.sample_id].append(
            _Caption(item.row.sample_id, item.row.actor_id, item.row.row_index, item.stats))
    for captions in images.values():
        captions.sort(key=lambda c: (c.actor_id, c.row_index))
    return dict(sorted(images.items())), skipped


def _point(label: str, lam: float | None, chosen: list[_Caption],
           measure: LambdaPreset) -> FrontierPoint:
    n = max(len(chosen), 1)
    h_total = o_total = h_rate = o_rate = 0.0
    for caption in chosen:
        counts = lambda_counts(caption.stats, measure)
        rates = lambda_rates(caption.stats, measure)
        assert counts is not None
        assert rates is not None
        h_total += counts[0]
        o_total += counts[1]
        h_rate += rates[0]
        o_rate += rates[1]
    scale = 100.0 / measure.per_words
    return FrontierPoint(label=label, lam=lam, images=len(chosen),
                         hallucinations_per_image=h_total / n, omissions_per_image=o_total / n,
                         hallucinations_per_100_words=h_rate / n * scale,
                         omissions_per_100_words=o_rate / n * scale)


def _rank(caption: _Caption, preset: LambdaPreset, index: int) -> tuple[float, float, int]:
    """Lowest cost first; a tie goes to the fewer errors in all (at lam 0 the fewest
    hallucinations among the captions with the fewest omissions), then to the input order."""
    cost = lambda_cost(caption.stats, preset)
    rates = lambda_rates(caption.stats, preset)
    assert cost is not None
    assert rates is not None
    return cost, rates[0] + rates[1], index


def sweep(rows: Sequence[RecomputedRow], lambdas: Sequence[float], measure: LambdaPreset,
          others: Sequence[Preset] = (), config: ClaimdiffConfig | None = None) -> SweepReport:
    """The frontier over `lambdas` (the `measure` preset with each lam) and other presets."""
    config = config or ClaimdiffConfig()
    images, skipped = _images(rows, measure)
    points: list[FrontierPoint] = []
    previous: dict[str, tuple[str, int]] | None = None
    for lam in lambdas:
        preset = measure.model_copy(update={"lam": lam, "name": f"lambda_{lam:g}"})
        chosen: list[_Caption] = []
        for captions in images.values():
            chosen.append(captions[min(range(len(captions)),
                                       key=lambda i: _rank(captions[i], preset, i))])
        picks = {c.sample_id: (c.actor_id, c.row_index) for c in chosen}
        point = _point(f"lambda={lam:g}", lam, chosen, measure)
        if previous is not None:
            point = dataclasses.replace(
                point, changed=sum(picks[s] != previous[s] for s in picks))
        points.append(point)
        previous = picks
    placed: list[FrontierPoint] = []
    for other in others:
        chosen = []
        for captions in images.values():
            scored = [(reward_value(c.stats, other, config.severity), i)
                      for i, c in enumerate(captions)]
            valued = [(value, i) for value, i in scored if value is not None]
            if valued:
                chosen.append(captions[max(valued, key=lambda pair: (pair[0], -pair[1]))[1]])
        if chosen:
            placed.append(_point(other.name, None, chosen, measure))
        else:
            skipped[f"{other.name}_without_values"] = len(images)
    return SweepReport(points=points, presets=placed, images=len(images),
                       captions=sum(len(c) for c in images.values()), skipped=skipped)


def render_sweep(report: SweepReport) -> str:
    header = (f"{'point':<20} {'images':>6} {'H/image':>8} {'O/image':>8} {'H/100w':>8} "
              f"{'O/100w':>8} {'changed':>7}")
    lines = [f"{report.images} images, {report.captions} captions"
             + (f"; skipped {report.skipped}" if any(report.skipped.values()) else ""),
             header, "-" * len(header)]
    for point in [*report.points, *report.presets]:
        changed = "" if point.changed is None else str(point.changed)
        lines.append(f"{point.label:<20} {point.images:>6} {point.hallucinations_per_image:>8.3f} "
                     f"{point.omissions_per_image:>8.3f} {point.hallucinations_per_100_words:>8.3f}"
                     f" {point.omissions_per_100_words:>8.3f} {changed:>7}")
    return "\n".join(lines)


def plot_frontier(report: SweepReport, path: str, title: str = "") -> None:
    """The frontier as a PNG: omissions (x) against hallucinations (y), per 100 words."""
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtraError("matplotlib", "plot") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from claimdiff.io.datasets import filesystem

    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    xs = [p.omissions_per_100_words for p in report.points]
    ys = [p.hallucinations_per_100_words for p in report.points]
    axes.plot(xs, ys, "-o", color="#1f5fa8", label="lambda operating points", zorder=2)
    # one label per position: operating points that prefer the same captions coincide
    groups: list[list[FrontierPoint]] = []
    for point in report.points:
        if groups and (groups[-1][-1].omissions_per_100_words, groups[-1][-1]
                       .hallucinations_per_100_words) == (point.omissions_per_100_words,
                                                          point.hallucinations_per_100_words):
            groups[-1].append(point)
        else:
            groups.append([point])
    for group in groups:
        first, last = group[0], group[-1]
        text = f"{first.lam:g}" if first is last else f"{first.lam:g}-{last.lam:g}"
        axes.annotate(f"\u03bb {text}", (first.omissions_per_100_words,
                                        first.hallucinations_per_100_words),
                      textcoords="offset points", xytext=(6, 4), fontsize=7, color="#1f5fa8")
    styles = [("s", "#d6604d"), ("D", "#4d9221"), ("^", "#8c510a"), ("v", "#762a83")]
    for index, point in enumerate(report.presets):
        marker, color = styles[index % len(styles)]
        axes.scatter([point.omissions_per_100_words], [point.hallucinations_per_100_words],
                     marker=marker, color=color, s=70, zorder=3, label=point.label)
    axes.set_xlabel("omissions per 100 words of the reference")
    axes.set_ylabel("hallucinations per 100 words of the caption")
    axes.set_title(title or f"Preferred captions of {report.images} images")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    fs, target = filesystem(path)
    with fs.open(target, "wb") as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
