"""The retry policy: requests answered, parsed and retried until they parse or run out of tries.

Shared by every pass (the first pass, the swap check, verification, the holistic call), so all of
them follow one rule. Beam-free: a backend and a batch of requests are all it needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from claimdiff.config import JudgeConfig
from claimdiff.errors import JudgeOutputError
from claimdiff.judges.backends.base import Decoding, JudgeBackend, JudgeRequest, RawAnswer
from claimdiff.judges.events import LATENCY_MS, Event, Observe

T = TypeVar("T")


@dataclass(frozen=True)
class Answer(Generic[T]):
    """One request after every attempt: the parsed output, or why there is none."""

    output: T | None
    raw: str | None
    attempts: int
    finish_reason: str | None
    error_class: str | None = None
    error: str | None = None


def answer_all(
    requests: Sequence[JudgeRequest],
    parsers: Sequence[Callable[[str | None], T]],
    backend: JudgeBackend,
    config: JudgeConfig,
    base: Decoding,
    note: Observe,
) -> list[Answer[T]]:
    """Answer requests, retrying invalid answers up to `config.max_attempts` tries in all.

    A request error the backend reports is final unless its kind says another try can help (a
    `RefusalError`: no content). So is an answer cut at the token budget, even one that parses:
    a cut plain-text answer can read as complete with its last differences missing, and the
    budget is the backend's to grow (the vllm backend already tried a larger one). An answer that
    does not parse or validate is tried again, with `retry_temperature` and another seed.
    """
    results: dict[int, Answer[T]] = {}
    pending = list(range(len(requests)))
    for attempt in range(1, config.max_attempts + 1):
        if not pending:
            break
        decoding = base if attempt == 1 else replace(
            base, temperature=config.retry_temperature, seed=base.seed + attempt - 1)
        if attempt > 1:
            note(Event.RETRIES, len(pending))
        started = time.perf_counter()
        answers = backend.judge([requests[i] for i in pending], decoding)
        note(Event.BACKEND_CALLS, 1)
        note(LATENCY_MS, int((time.perf_counter() - started) * 1000))
        if len(answers) != len(pending):
            raise RuntimeError(
                f"backend {backend.model_id} answered {len(answers)} of {len(pending)} requests")
        still_pending = []
        for index, answer in zip(pending, answers, strict=True):
            _count(answer, note)
            outcome = _outcome(answer, parsers[index], decoding, attempt, note)
            results[index] = outcome
            if outcome.output is None and _retryable(answer):
                still_pending.append(index)
        pending = still_pending
    return [results[i] for i in range(len(requests))]


def _retryable(answer: RawAnswer) -> bool:
    if answer.error is not None:
        return answer.error.retryable
    return answer.finish_reason != "length"


def _outcome(answer: RawAnswer, parse: Callable[[str | None], T], decoding: Decoding,
             attempt: int, note: Observe) -> Answer[T]:
    if answer.error is not None:
        note(Event.REQUEST_ERRORS, 1)
        return Answer(None, answer.text, attempt, answer.finish_reason,
                      type(answer.error).__name__, str(answer.error))
    if answer.finish_reason == "length":
        note(Event.CUT_ANSWERS, 1)
        budget = answer.max_tokens if answer.max_tokens is not None else decoding.max_new_tokens
        return Answer(None, answer.text, attempt, answer.finish_reason,
                      JudgeOutputError.__name__,
                      f"answer cut at the token budget ({budget} new tokens); "
                      f"judge.max_new_tokens is {decoding.max_new_tokens}")
    try:
        output = parse(answer.text)
    except JudgeOutputError as exc:
        note(Event.INVALID_ANSWERS, 1)
        return Answer(None, answer.text, attempt, answer.finish_reason,
                      JudgeOutputError.__name__, str(exc))
    note(Event.ANSWERS, 1)
    return Answer(output, answer.text, attempt, answer.finish_reason)


def _count(answer: RawAnswer, note: Observe) -> None:
    """What the backend reported of this answer, summed into the run's counters."""
    for event, value in ((Event.PROMPT_TOKENS, answer.prompt_tokens),
                         (Event.CACHED_PROMPT_TOKENS, answer.cached_prompt_tokens),
                         (Event.NEW_TOKENS, answer.new_tokens),
                         (Event.TRANSPORT_ATTEMPTS, answer.transport_attempts),
                         (Event.LENGTH_RETRIES, answer.length_retries)):
        if value:
            note(event, value)
