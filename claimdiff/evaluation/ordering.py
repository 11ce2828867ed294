"""Reward ordering checks: does each reward preset rank the gold-cleaner caption higher?

Per sample (image), gold labels decide which captions are cleaner: the captions with the fewest
gold actor errors (hallucinations + omissions) are the *clean* ones, every caption with more is
*edited*. Each (clean, edited) pair is one check; a preset passes it when the clean caption's
reward is strictly higher. Ties are counted on their own: a preset that cannot tell the two
apart has not ranked them. A pair where either reward is null (the run failed on that row, or
the run has no row) is excluded and counted, never scored as a loss.

Two rates per preset, overall and per breakdown (edit kind, severity):
- pairs: `share_correct` = correct pairs / compared pairs;
- samples: `sample_pass_rate` = samples that pass / samples with a compared pair, where a sample
  passes when every one of its compared pairs (in that breakdown) is correct; one tie or
  inversion fails it. This is "the share of images where the preset ranks the cleaner caption
  above the edited one": a sample is one (image, reference) pair, so an image judged against a
  corrupted reference too (the synthetic `-r` samples) counts once per reference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from claimdiff.evaluation.report import OrderingCounts, PresetOrdering, RewardOrdering


@dataclass(frozen=True)
class PresetId:
    name: str
    kind: str
    version: int


@dataclass(frozen=True)
class OrderingRow:
    """One gold-labelled caption, as the ordering checks see it."""

    sample_id: str
    actor_errors: int  # gold actor hallucinations + omissions
    edit: str  # breakdown label of the caption's edit
    severity: int | None  # max gold actor severity; None without actor errors
    # preset name -> value (None: the preset has nothing to score); None: a failed or missing row
    rewards: Mapping[str, float | None] | None
    missing: bool = False  # True: the run has no row for this caption at all


@dataclass
class _Tally:
    correct: int = 0
    ties: int = 0
    inverted: int = 0
    excluded: int = 0
    # sample id -> whether every compared pair of it so far is correct
    samples: dict[str, bool] = field(default_factory=dict)

    def add(self, sample_id: str, clean: float | None, edited: float | None) -> None:
        if clean is None or edited is None:
            self.excluded += 1  # no verdict: neither passes nor fails the sample
            return
        if clean > edited:
            self.correct += 1
        elif clean == edited:
            self.ties += 1
        else:
            self.inverted += 1
        self.samples[sample_id] = self.samples.get(sample_id, True) and clean > edited

    def counts(self) -> OrderingCounts:
        pairs = self.correct + self.ties + self.inverted
        passed = sum(self.samples.values())
        return OrderingCounts(
            pairs=pairs, correct=self.correct, ties=self.ties, inverted=self.inverted,
            excluded=self.excluded,
            share_correct=self.correct / pairs if pairs else None,
            share_ties=self.ties / pairs if pairs else None,
            samples=len(self.samples), samples_passed=passed,
            sample_pass_rate=passed / len(self.samples) if self.samples else None)


def gold_pairs(rows: Sequence[OrderingRow]) -> list[tuple[OrderingRow, OrderingRow]]:
    """(clean, edited) pairs per sample, in sample then input order."""
    by_sample: dict[str, list[OrderingRow]] = defaultdict(list)
    for row in rows:
        by_sample[row.sample_id].append(row)
    pairs: list[tuple[OrderingRow, OrderingRow]] = []
    for sample in sorted(by_sample):
        group = by_sample[sample]
        fewest = min(r.actor_errors for r in group)
        clean = [r for r in group if r.actor_errors == fewest]
        pairs.extend((c, e) for e in group if e.actor_errors > fewest for c in clean)
    return pairs


def _value(row: OrderingRow, name: str) -> float | None:
    return None if row.rewards is None else row.rewards.get(name)


def reward_ordering(rows: Sequence[OrderingRow], presets: Sequence[PresetId],
                    edit_source: str) -> RewardOrdering:
    pairs = gold_pairs(rows)
    in_pairs = {id(r): r for pair in pairs for r in pair}.values()
    results = []
    for preset in presets:
        overall = _Tally()
        by_edit: dict[str, _Tally] = defaultdict(_Tally)
        by_severity: dict[str, _Tally] = defaultdict(_Tally)
        for clean, edited in pairs:
            a, b = _value(clean, preset.name), _value(edited, preset.name)
            for tally in (overall, by_edit[edited.edit], by_severity[str(edited.severity)]):
                tally.add(clean.sample_id, a, b)
        results.append(PresetOrdering(
            name=preset.name, kind=preset.kind, version=preset.version,
            overall=overall.counts(),
            by_edit={k: t.counts() for k, t in sorted(by_edit.items())},
            by_severity={k: t.counts() for k, t in sorted(by_severity.items())}))
    return RewardOrdering(
        edit_source=edit_source,
        samples=len({clean.sample_id for clean, _ in pairs}),
        gold_pairs=len(pairs),
        rows_null_reward=sum(1 for r in in_pairs if r.rewards is None and not r.missing),
        rows_missing_from_run=sum(1 for r in in_pairs if r.missing),
        presets=results)
