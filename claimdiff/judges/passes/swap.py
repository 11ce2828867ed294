"""Position-swap consistency: the same pair judged again with the captions' roles swapped.

Judges favour a position. For a configured share of rows (`judge.swap_fraction`, chosen by the
row's cache key, so reruns pick the same rows) the judge also sees the reference in the actor's
place and the actor caption in the reference's place. The swapped answer is mirrored back
(claims, spans and errors change sides; `actor` <-> `reference` judgments swap) and compared with
the original:
- differences found: one-to-one matches by the matcher of `claimdiff eval` (token overlap of
  aspects and of claims, optimal assignment), so `difference_consistency` = 2 * matched /
  (original + swapped);
- judgments: of the matched differences, the share whose mirrored judgment gives the same
  outcomes as the original (an actor-only claim judged `both_wrong` in one position and
  `reference` in the other is an actor hallucination both times: they agree).
The swapped answer is diagnostic only: it never changes outcomes or rewards, and a swapped call
that fails validation is counted (`swap_failures`), not turned into a failed row.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING

from claimdiff.judges.attempts import answer_all
from claimdiff.judges.backends.base import JudgeBackend, JudgeRequest, Role
from claimdiff.judges.events import Event, Observe
from claimdiff.judges.formats import parser_for
from claimdiff.judges.gold import mirror
from claimdiff.judges.records import JudgeResult
from claimdiff.matching import DEFAULT_THRESHOLD, assign, lexical_score
from claimdiff.rewards.outcomes import difference_kind, outcomes_of
from claimdiff.schemas.judge import JudgedDifference, JudgeOutput
from claimdiff.schemas.rows import Outcome, SwapCheck

if TYPE_CHECKING:
    from claimdiff.judges.judge_setup import JudgeSetup

MATCH_THRESHOLD = DEFAULT_THRESHOLD


def selected(cache_key: str, fraction: float) -> bool:
    """Whether a row is in the swap sample: a stable hash of its cache key below `fraction`."""
    if fraction <= 0:
        return False
    bucket = int(hashlib.sha256(f"swap:{cache_key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < fraction


def _outcomes(difference: JudgedDifference) -> tuple[Outcome, ...]:
    kind = difference_kind(difference.actor_claim, difference.reference_claim)
    return outcomes_of(kind, difference.judgment)


def compare(original: JudgeOutput, mirrored: JudgeOutput) -> SwapCheck:
    """How far the mirrored swapped answer agrees with the original one."""
    scores = [[lexical_score(a, b) for b in mirrored.differences] for a in original.differences]
    matches = assign(scores, MATCH_THRESHOLD)
    agreements = sum(
        1 for m in matches
        if _outcomes(original.differences[m.predicted]) == _outcomes(mirrored.differences[m.gold]))
    return SwapCheck(original_differences=len(original.differences),
                     swapped_differences=len(mirrored.differences),
                     matched=len(matches), judgment_agreements=agreements)


def swap_check(results: list[JudgeResult], backend: JudgeBackend, setup: JudgeSetup,
               note: Observe) -> list[JudgeResult]:
    """Judge the swap sample again with the captions' roles swapped; attach each comparison."""
    config = setup.config
    parse = parser_for(config.output_format)
    chosen = [i for i, r in enumerate(results)
              if r.output is not None and selected(r.item.cache_key, config.swap_fraction)]
    requests = [JudgeRequest(
        key=f"{results[i].item.cache_key}:swap", role=Role.SWAP, gold=results[i].item.row.gold,
        prompt=setup.render(setup.prompt, reference=results[i].item.row.caption,
                            caption=results[i].item.row.reference),
        image=results[i].item.pixels) for i in chosen]
    answers = answer_all(requests, [parse] * len(requests), backend, config,
                         setup.first_decoding, note)
    updated = list(results)
    for i, answer in zip(chosen, answers, strict=True):
        result = results[i]
        if answer.output is None or result.output is None:
            note(Event.SWAP_FAILURES, 1)
            continue
        check = compare(result.output, mirror(answer.output))
        note(Event.SWAP_ROWS, 1)
        note(Event.SWAP_ORIGINAL_DIFFERENCES, check.original_differences)
        note(Event.SWAP_SWAPPED_DIFFERENCES, check.swapped_differences)
        note(Event.SWAP_MATCHED, check.matched)
        note(Event.SWAP_JUDGMENT_AGREEMENTS, check.judgment_agreements)
        updated[i] = replace(result, swap=check)
    return updated
