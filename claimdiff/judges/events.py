"""The judge's counters: one vocabulary, defined once, and the run statistics derived from them.

The judging loop reports each event under its `Event` name; the Beam model handler turns them
into counters of the namespace `claimdiff.judge` (summed over workers into `run.json`
`counters`), and `judge_stats` reads the same names back for `run.json` `judge_stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

NAMESPACE = "claimdiff.judge"
LATENCY_MS = "backend_call_ms"  # a distribution, not a counter


class Event(StrEnum):
    BACKEND_CALLS = "backend_calls"
    RETRIES = "retries"
    INVALID_ANSWERS = "invalid_answers"
    CUT_ANSWERS = "answers_cut_at_max_tokens"
    REQUEST_ERRORS = "request_errors"
    ANSWERS = "answers"
    # what backends report per answer (`RawAnswer`), summed
    PROMPT_TOKENS = "prompt_tokens"
    CACHED_PROMPT_TOKENS = "cached_prompt_tokens"
    NEW_TOKENS = "new_tokens"
    TRANSPORT_ATTEMPTS = "transport_attempts"
    LENGTH_RETRIES = "length_retries"
    # the position-swap check
    SWAP_ROWS = "swap_rows"
    SWAP_FAILURES = "swap_failures"
    SWAP_ORIGINAL_DIFFERENCES = "swap_original_differences"
    SWAP_SWAPPED_DIFFERENCES = "swap_swapped_differences"
    SWAP_MATCHED = "swap_matched"
    SWAP_JUDGMENT_AGREEMENTS = "swap_judgment_agreements"
    # the verification pass
    VERIFY_REQUESTS = "verify_requests"
    VERIFY_DIFFERENCES = "verify_differences"
    VERIFY_EXEMPT = "verify_exempt"
    VERIFY_DISAGREEMENTS = "verify_disagreements"
    # the holistic baseline
    HOLISTIC_REQUESTS = "holistic_requests"
    HOLISTIC_FAILURES = "holistic_failures"


Observe = Callable[[str, int], None]  # (an Event, or LATENCY_MS; the value)


def ignore(event: str, value: int) -> None:
    """An observer that drops every event (judging outside a pipeline)."""


def judge_stats(counters: Mapping[str, int], *, two_pass: bool, swap: bool,
                holistic: bool = False) -> dict[str, float | None]:
    """Per-run judge statistics from the counters (keys `claimdiff.judge/<event>`).

    A rate with nothing under it is null, never 1.0 or 0.0: a swap check whose every call failed
    must not read as a perfectly consistent judge.
    """
    def count(event: Event) -> int:
        return counters.get(f"{NAMESPACE}/{event.value}", 0)

    def rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    stats: dict[str, float | None] = {
        "answers": count(Event.ANSWERS),
        "transport_attempts": count(Event.TRANSPORT_ATTEMPTS),
        "length_retries": count(Event.LENGTH_RETRIES),
    }
    if count(Event.PROMPT_TOKENS):
        prompt, cached = count(Event.PROMPT_TOKENS), count(Event.CACHED_PROMPT_TOKENS)
        stats |= {"prompt_tokens": prompt, "cached_prompt_tokens": cached,
                  "new_tokens": count(Event.NEW_TOKENS),
                  "prefix_cache_hit_rate": cached / prompt}
    if two_pass:
        checked, disagreed = count(Event.VERIFY_DIFFERENCES), count(Event.VERIFY_DISAGREEMENTS)
        stats |= {"verify_requests": count(Event.VERIFY_REQUESTS), "verify_differences": checked,
                  "verify_exempt": count(Event.VERIFY_EXEMPT), "verify_disagreements": disagreed,
                  "verify_disagreement_rate": rate(disagreed, checked)}
    if swap:
        original, swapped = count(Event.SWAP_ORIGINAL_DIFFERENCES), count(
            Event.SWAP_SWAPPED_DIFFERENCES)
        matched, agreed = count(Event.SWAP_MATCHED), count(Event.SWAP_JUDGMENT_AGREEMENTS)
        stats |= {
            "swap_rows": count(Event.SWAP_ROWS), "swap_failures": count(Event.SWAP_FAILURES),
            "swap_difference_consistency": rate(2 * matched, original + swapped),
            "swap_judgment_consistency": rate(agreed, matched),
        }
    if holistic:
        requests, failed = count(Event.HOLISTIC_REQUESTS), count(Event.HOLISTIC_FAILURES)
        stats |= {"holistic_requests": requests, "holistic_failures": failed}
    return stats
