"""The holistic baseline: one 0-10 score of the whole caption per row, through the same backend.

Made where a preset of kind `holistic` is configured (the baseline the paper compares against).
The score is the row's `stats.holistic_score`; a holistic call that still fails after every
attempt leaves it null, so the holistic reward is null while every other preset of the row
stands (the claim-level judgment does not depend on it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from claimdiff.judges.attempts import answer_all
from claimdiff.judges.backends.base import JudgeBackend, JudgeRequest, Role
from claimdiff.judges.events import Event, Observe
from claimdiff.judges.formats.answer_tags import answer_text
from claimdiff.judges.formats.holistic import parse_holistic
from claimdiff.judges.records import JudgeResult

if TYPE_CHECKING:
    from claimdiff.judges.judge_setup import JudgeSetup


def holistic(results: list[JudgeResult], backend: JudgeBackend, setup: JudgeSetup,
             note: Observe) -> list[JudgeResult]:
    """A holistic score for every row the first pass answered."""
    assert setup.holistic_prompt is not None  # JudgeSetup loads it for a holistic preset
    chosen = [i for i, r in enumerate(results) if r.output is not None]
    requests = [JudgeRequest(
        key=f"{results[i].item.cache_key}:holistic", role=Role.HOLISTIC,
        prompt=setup.render(setup.holistic_prompt, reference=results[i].item.row.reference,
                            caption=answer_text(results[i].item.row.caption)),
        image=results[i].item.pixels, gold=results[i].item.row.gold) for i in chosen]
    answers = answer_all(requests, [parse_holistic] * len(requests), backend, setup.config,
                         setup.first_decoding, note)
    note(Event.HOLISTIC_REQUESTS, len(requests))
    updated = list(results)
    for i, answer in zip(chosen, answers, strict=True):
        if answer.output is None:
            note(Event.HOLISTIC_FAILURES, 1)
            updated[i] = replace(results[i], holistic_raw=answer.raw)
            continue
        updated[i] = replace(results[i], holistic_score=answer.output.score,
                             holistic_raw=answer.raw)
    return updated
