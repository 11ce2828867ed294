"""The judging loop: a batch of rows through the first pass and, where configured, the
position-swap check, the verification pass and the holistic call. Free of Beam: the model
handler (`judges.model_handler`) adapts it to `RunInference`, and anything else (a plain loop,
a reward service) can call it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from claimdiff.judges.attempts import answer_all
from claimdiff.judges.backends.base import JudgeBackend, JudgeRequest, Role
from claimdiff.judges.events import Observe, ignore
from claimdiff.judges.formats import parser_for
from claimdiff.judges.passes.holistic import holistic
from claimdiff.judges.passes.swap import swap_check
from claimdiff.judges.passes.verification import verify
from claimdiff.judges.records import JudgeItem, JudgeResult

if TYPE_CHECKING:
    from claimdiff.judges.judge_setup import JudgeSetup


def first_request(item: JudgeItem) -> JudgeRequest:
    return JudgeRequest(key=item.cache_key, prompt=item.prompt, image=item.pixels,
                        role=Role.JUDGE, gold=item.row.gold)


def judge_batch(batch: Sequence[JudgeItem], backend: JudgeBackend, setup: JudgeSetup,
                observe: Observe = ignore) -> list[JudgeResult]:
    """First pass for the whole batch; then the swap check (against the first pass), the
    verification pass and the holistic call, each where the setup asks for it."""
    config = setup.config
    parse = parser_for(config.output_format)
    answers = answer_all([first_request(item) for item in batch], [parse] * len(batch), backend,
                         config, setup.first_decoding, observe)
    results = [JudgeResult(item, a.output, a.raw, a.attempts, a.finish_reason, a.error_class,
                           a.error) for item, a in zip(batch, answers, strict=True)]
    if config.swap_fraction > 0:
        results = swap_check(results, backend, setup, observe)
    if setup.verify_prompt is not None:
        results = verify(results, backend, setup, observe)
    if setup.holistic_prompt is not None:
        results = holistic(results, backend, setup, observe)
    return results
