"""The outcome table (docs/architecture.md: outcomes), as one pure function.

| claims present | judgment                 | outcomes                                   |
|----------------|--------------------------|--------------------------------------------|
| actor only     | reference / both_wrong   | actor_hallucination                        |
| actor only     | actor                    | actor_extra_correct                        |
| reference only | reference                | actor_omission                             |
| reference only | actor / both_wrong       | reference_hallucination                    |
| both           | reference                | actor_hallucination (contradiction)        |
| both           | actor                    | reference_error                            |
| both           | both_wrong               | actor_hallucination + reference_error      |
| any            | both_supported           | spurious                                   |
| any            | uncertain                | unverifiable                               |
"""

from __future__ import annotations

from claimdiff.schemas.judge import Judgment
from claimdiff.schemas.rows import DifferenceKind, Outcome

ACTOR_ERRORS = frozenset({Outcome.ACTOR_HALLUCINATION, Outcome.ACTOR_OMISSION})
REFERENCE_ERRORS = frozenset({Outcome.REFERENCE_HALLUCINATION, Outcome.REFERENCE_ERROR})
NOISE = frozenset({Outcome.SPURIOUS, Outcome.UNVERIFIABLE})


def difference_kind(actor_claim: str | None, reference_claim: str | None) -> DifferenceKind:
    has_actor = bool((actor_claim or "").strip())
    has_reference = bool((reference_claim or "").strip())
    if has_actor and has_reference:
        return DifferenceKind.CONFLICT
    if has_actor:
        return DifferenceKind.ACTOR_ONLY
    if has_reference:
        return DifferenceKind.REFERENCE_ONLY
    raise ValueError("a difference with neither claim has no kind")


def outcomes_of(kind: DifferenceKind, judgment: Judgment) -> tuple[Outcome, ...]:
    """Outcomes of one difference; two only for a conflict both sides get wrong.

    >>> outcomes_of(DifferenceKind.REFERENCE_ONLY, Judgment.REFERENCE)
    (<Outcome.ACTOR_OMISSION: 'actor_omission'>,)
    """
    if judgment is Judgment.BOTH_SUPPORTED:
        return (Outcome.SPURIOUS,)
    if judgment is Judgment.UNCERTAIN:
        return (Outcome.UNVERIFIABLE,)
    if kind is DifferenceKind.ACTOR_ONLY:
        if judgment is Judgment.ACTOR:
            return (Outcome.ACTOR_EXTRA_CORRECT,)
        return (Outcome.ACTOR_HALLUCINATION,)
    if kind is DifferenceKind.REFERENCE_ONLY:
        if judgment is Judgment.REFERENCE:
            return (Outcome.ACTOR_OMISSION,)
        return (Outcome.REFERENCE_HALLUCINATION,)
    if judgment is Judgment.REFERENCE:
        return (Outcome.ACTOR_HALLUCINATION,)
    if judgment is Judgment.ACTOR:
        return (Outcome.REFERENCE_ERROR,)
    return (Outcome.ACTOR_HALLUCINATION, Outcome.REFERENCE_ERROR)


def actor_erred(outcomes: tuple[Outcome, ...]) -> bool:
    return any(o in ACTOR_ERRORS for o in outcomes)


def reference_erred(outcomes: tuple[Outcome, ...]) -> bool:
    return any(o in REFERENCE_ERRORS for o in outcomes)
