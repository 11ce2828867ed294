from __future__ import annotations

import pytest

from claimdiff.rewards.outcomes import actor_erred, difference_kind, outcomes_of, reference_erred
from claimdiff.schemas.judge import Judgment
from claimdiff.schemas.rows import DifferenceKind, Outcome

A, R, C = DifferenceKind.ACTOR_ONLY, DifferenceKind.REFERENCE_ONLY, DifferenceKind.CONFLICT
J = Judgment
O = Outcome  # noqa: E741


# The outcome table (docs/architecture.md), row by row.
@pytest.mark.parametrize(
    ("kind", "judgment", "expected"),
    [
        (A, J.REFERENCE, (O.ACTOR_HALLUCINATION,)),
        (A, J.BOTH_WRONG, (O.ACTOR_HALLUCINATION,)),
        (A, J.ACTOR, (O.ACTOR_EXTRA_CORRECT,)),
        (R, J.REFERENCE, (O.ACTOR_OMISSION,)),
        (R, J.ACTOR, (O.REFERENCE_HALLUCINATION,)),
        (R, J.BOTH_WRONG, (O.REFERENCE_HALLUCINATION,)),
        (C, J.REFERENCE, (O.ACTOR_HALLUCINATION,)),
        (C, J.ACTOR, (O.REFERENCE_ERROR,)),
        (C, J.BOTH_WRONG, (O.ACTOR_HALLUCINATION, O.REFERENCE_ERROR)),
        (A, J.BOTH_SUPPORTED, (O.SPURIOUS,)),
        (R, J.BOTH_SUPPORTED, (O.SPURIOUS,)),
        (C, J.BOTH_SUPPORTED, (O.SPURIOUS,)),
        (A, J.UNCERTAIN, (O.UNVERIFIABLE,)),
        (R, J.UNCERTAIN, (O.UNVERIFIABLE,)),
        (C, J.UNCERTAIN, (O.UNVERIFIABLE,)),
    ],
)
def test_outcome_table(kind: DifferenceKind, judgment: Judgment, expected: tuple[Outcome, ...]):
    assert outcomes_of(kind, judgment) == expected


@pytest.mark.parametrize(
    ("outcomes", "actor", "reference"),
    [
        ((O.ACTOR_HALLUCINATION,), True, False),
        ((O.ACTOR_OMISSION,), True, False),
        ((O.ACTOR_EXTRA_CORRECT,), False, False),
        ((O.REFERENCE_HALLUCINATION,), False, True),
        ((O.REFERENCE_ERROR,), False, True),
        ((O.ACTOR_HALLUCINATION, O.REFERENCE_ERROR), True, True),
        ((O.SPURIOUS,), False, False),
        ((O.UNVERIFIABLE,), False, False),
    ],
)
def test_who_erred(outcomes: tuple[Outcome, ...], actor: bool, reference: bool):
    assert actor_erred(outcomes) is actor
    assert reference_erred(outcomes) is reference


def test_kind_from_claims():
    assert difference_kind("a red car", None) is A
    assert difference_kind(None, "a blue car") is R
    assert difference_kind("a red car", "a blue car") is C
    assert difference_kind("a red car", "   ") is A
    with pytest.raises(ValueError, match="neither claim"):
        difference_kind(None, "")
