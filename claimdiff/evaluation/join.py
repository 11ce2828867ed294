"""Join gold items and run rows per (sample_id, actor_id).

Rules, per key (sample_id, actor_id):
- exactly one gold item and one run row: they are joined, whatever their row indices (the gold
  manifest may be a re-ordered or filtered copy of the run's);
- otherwise (duplicates: several captions of one policy for one image, or a glob of manifests
  whose row indices collide) rows are paired by `row_index`: an index with exactly one gold item
  and one run row is joined, an index with one side only is gold-only / run-only, and an index
  with several rows on a side cannot be told apart and is left out as *ambiguous* (counted).

A run row's predicted differences are the `differences/` rows with the same
(sample_id, actor_id, row_index). Differences whose key has no rewards row are *orphans*
(counted; the pipeline always writes a rewards row, so they signal a damaged output).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from claimdiff.evaluation.load import MAX_PROBLEMS, GoldItem, GoldSet, RunOutput
from claimdiff.evaluation.report import JoinSummary
from claimdiff.schemas.rows import DifferenceRow, RewardRow, RowStatus


@dataclass(frozen=True)
class RunItem:
    reward: RewardRow
    differences: tuple[DifferenceRow, ...]

    @property
    def judged(self) -> bool:
        return self.reward.status is RowStatus.OK


@dataclass(frozen=True)
class JoinedItem:
    """A gold item and its run row (None: the run has no row for it)."""

    gold: GoldItem
    run: RunItem | None


@dataclass(frozen=True)
class Joined:
    items: list[JoinedItem]  # every unambiguous gold item, joined or gold-only, in key order
    summary: JoinSummary

    @property
    def judged(self) -> list[JoinedItem]:
        return [i for i in self.items if i.run is not None and i.run.judged]


def _pair_by_index(gold: Sequence[GoldItem], run: Sequence[RunItem]
                   ) -> tuple[list[JoinedItem], int, int, int]:
    """Joined/gold-only items plus (run-only, ambiguous gold, ambiguous run) counts."""
    g_by: dict[int, list[GoldItem]] = defaultdict(list)
    r_by: dict[int, list[RunItem]] = defaultdict(list)
    for g in gold:
        g_by[g.row.row_index].append(g)
    for r in run:
        r_by[r.reward.row_index].append(r)
    items: list[JoinedItem] = []
    run_only = ambiguous_gold = ambiguous_run = 0
    for index in sorted(set(g_by) | set(r_by)):
        gs, rs = g_by.get(index, []), r_by.get(index, [])
        if len(gs) > 1 or len(rs) > 1:
            ambiguous_gold += len(gs)
            ambiguous_run += len(rs)
        elif gs:
            items.append(JoinedItem(gs[0], rs[0] if rs else None))
        else:
            run_only += len(rs)
    return items, run_only, ambiguous_gold, ambiguous_run


def join(gold: GoldSet, run: RunOutput) -> Joined:
    differences: dict[tuple[str, str, int], list[DifferenceRow]] = defaultdict(list)
    for d in run.differences:
        differences[(d.sample_id, d.actor_id, d.row_index)].append(d)
    reward_keys = {(r.sample_id, r.actor_id, r.row_index) for r in run.rewards}
    orphans = sum(len(v) for k, v in differences.items() if k not in reward_keys)

    gold_by: dict[tuple[str, str], list[GoldItem]] = defaultdict(list)
    run_by: dict[tuple[str, str], list[RunItem]] = defaultdict(list)
    for g in gold.items:
        gold_by[g.key].append(g)
    for r in run.rewards:
        key3 = (r.sample_id, r.actor_id, r.row_index)
        run_by[(r.sample_id, r.actor_id)].append(RunItem(r, tuple(differences.get(key3, ()))))

    items: list[JoinedItem] = []
    run_only = ambiguous_gold = ambiguous_run = 0
    problems = list(gold.problems)
    for key in sorted(set(gold_by) | set(run_by)):
        gs, rs = gold_by.get(key, []), run_by.get(key, [])
        if len(gs) == 1 and len(rs) == 1:
            items.append(JoinedItem(gs[0], rs[0]))
            continue
        found, r_only, a_gold, a_run = _pair_by_index(gs, rs)
        items.extend(found)
        run_only += r_only
        ambiguous_gold += a_gold
        ambiguous_run += a_run
        if (a_gold or a_run) and len(problems) < MAX_PROBLEMS:
            problems.append(f"ambiguous key sample_id={key[0]} actor_id={key[1]}: {a_gold} gold "
                            f"and {a_run} run rows share a row_index")

    judged = sum(1 for i in items if i.run is not None and i.run.judged)
    failed = sum(1 for i in items if i.run is not None and not i.run.judged)
    summary = JoinSummary(
        gold_rows=gold.rows, gold_invalid_rows=gold.invalid_rows,
        gold_unlabelled=gold.unlabelled, gold_label_errors=gold.label_errors,
        gold_items=len(gold.items), run_rows=len(run.rewards), joined_judged=judged,
        joined_failed=failed, gold_only=sum(1 for i in items if i.run is None),
        run_only=run_only, ambiguous_gold=ambiguous_gold, ambiguous_run=ambiguous_run,
        orphan_differences=orphans, problems=problems)
    return Joined(items, summary)
