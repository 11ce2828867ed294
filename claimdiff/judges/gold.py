"""What a perfect judge answers in the extra passes, given its first-pass answer: the same answer
with the captions' roles swapped, and the verdicts its judgments imply. The labels judge answers
from these; the position-swap check mirrors a swapped answer back with the same function."""

from __future__ import annotations

from claimdiff.schemas.judge import (
    ClaimVerdict,
    JudgedDifference,
    JudgeOutput,
    Judgment,
    Overall,
    Verdict,
    VerificationOutput,
)

V, J = Verdict, Judgment
_MIRROR_JUDGMENT = {Judgment.ACTOR: Judgment.REFERENCE, Judgment.REFERENCE: Judgment.ACTOR}
_MIRROR_OVERALL = {Overall.ACTOR: Overall.REFERENCE, Overall.REFERENCE: Overall.ACTOR}


def mirror(output: JudgeOutput) -> JudgeOutput:
    """An answer about (A=reference, R=actor) rewritten as one about (A=actor, R=reference)."""
    differences = [
        JudgedDifference(
            aspect=d.aspect, actor_claim=d.reference_claim, reference_claim=d.actor_claim,
            actor_span=d.reference_span, reference_span=d.actor_span,
            judgment=_MIRROR_JUDGMENT.get(d.judgment, d.judgment),
            actor_error=d.reference_error, reference_error=d.actor_error,
            confidence=d.confidence)
        for d in output.differences
    ]
    overall = _MIRROR_OVERALL.get(output.overall, output.overall) if output.overall else None
    return JudgeOutput(differences=differences, overall=overall)


def verdicts_for(output: JudgeOutput) -> VerificationOutput:
    """The verdicts a judgment implies: what the `labels` judge answers in the second pass."""
    by_judgment = {
        J.ACTOR: (V.SUPPORTED, V.CONTRADICTED), J.REFERENCE: (V.CONTRADICTED, V.SUPPORTED),
        J.BOTH_WRONG: (V.CONTRADICTED, V.CONTRADICTED),
        J.BOTH_SUPPORTED: (V.SUPPORTED, V.SUPPORTED), J.UNCERTAIN: (V.UNCERTAIN, V.UNCERTAIN),
    }
    verdicts = []
    for index, difference in enumerate(output.differences):
        actor, reference = by_judgment[difference.judgment]
        if difference.actor_claim and difference.actor_claim.strip():
            verdicts.append(ClaimVerdict(claim_id=f"{index + 1}A", verdict=actor))
        if difference.reference_claim and difference.reference_claim.strip():
            verdicts.append(ClaimVerdict(claim_id=f"{index + 1}R", verdict=reference))
    return VerificationOutput(verdicts=verdicts)
