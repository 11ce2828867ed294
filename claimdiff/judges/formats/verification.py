"""The verification answer format: a verdict per claim the request asked about."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.formats.json_answer import (
    describe_validation,
    extract_json,
    load_answer_json,
)
from claimdiff.schemas.judge import VerificationOutput


@dataclass(frozen=True)
class Claim:
    """One claim to verify: `<n>A` / `<n>R` for the actor / reference claim of difference n."""

    claim_id: str
    text: str


def parse_verification(text: str | None, expected: Sequence[Claim]) -> VerificationOutput:
    """Parse an answer and check it decides exactly the claims it was asked about."""
    if text is None or not text.strip():
        raise JudgeOutputError("empty verification answer")
    data = load_answer_json(extract_json(text))
    if not isinstance(data, dict):
        raise JudgeOutputError(f"verification answer is a JSON {type(data).__name__}, "
                               "not an object")
    try:
        output = VerificationOutput.model_validate(data)
    except ValidationError as exc:
        raise JudgeOutputError(
            f"verification answer does not fit its schema: {describe_validation(exc)}") from exc
    asked = [c.claim_id for c in expected]
    answered = [v.claim_id for v in output.verdicts]
    if sorted(answered) != sorted(asked):
        missing = sorted(set(asked) - set(answered))
        unexpected = sorted(set(answered) - set(asked))
        repeated = sorted({a for a in answered if answered.count(a) > 1})
        raise JudgeOutputError(
            f"verification must decide claims {asked} once each: missing {missing}, "
            f"unexpected {unexpected}, repeated {repeated}")
    return output
