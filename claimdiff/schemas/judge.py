"""The judge's structured output: what every backend returns and what `gold` holds.

These models are the single source of the judge format (docs/architecture.md). The JSON schema that
constrains decoding is derived from them (`decoding_schema`), and every raw output is validated
against them after decoding, so a backend that ignores the constraint still cannot smuggle in a
malformed row.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from claimdiff.text import is_blank

# Bounds on untrusted judge text. They are enforced on validation; for decoding they are expressed
# as regex patterns (see `decoding_schema`) because xgrammar 0.2.8 mishandles string maxLength.
MAX_ASPECT_CHARS = 120
MAX_CLAIM_CHARS = 400
MAX_DETAIL_CHARS = 300
MAX_TYPE_CHARS = 64
MAX_DIFFERENCES = 64

# What every judge answer model shares. A judge answer (a model's, a gold label, a verification)
# becomes training data, so nothing is coerced: every key the decoding schema requires must be
# there (an answer without `differences` is not "no differences", it is not an answer), no key it
# does not know may be, numbers are numbers (`true` is not severity 1, `"0.9"` is not a
# confidence), and NaN or infinity is nobody's confidence. Enum fields alone read their values
# from strings (`strict=False` on the field), since JSON has no enums.
_ANSWER = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _whole_number(value: Any) -> Any:
    """Refuse what `Literal[1, 2, 3]` would take by equality: `True`, `2.0`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"must be the integer 1, 2 or 3 (or null), not a {type(value).__name__}")
    return value


Severity = Annotated[Literal[1, 2, 3] | None, BeforeValidator(_whole_number)]


class Judgment(StrEnum):
    """Which side the image supports, for one difference."""

    ACTOR = "actor"
    REFERENCE = "reference"
    BOTH_WRONG = "both_wrong"
    BOTH_SUPPORTED = "both_supported"
    UNCERTAIN = "uncertain"


class Overall(StrEnum):
    ACTOR = "actor"
    REFERENCE = "reference"
    TIE = "tie"


def _visible(value: str) -> str:
    if is_blank(value):
        raise ValueError("must show some text (it is empty or only invisible characters)")
    return value


class ErrorLabel(BaseModel):
    """The error of one side of a difference: open-vocabulary type, short detail, severity."""

    model_config = _ANSWER

    type: str = Field(
        min_length=1,
        max_length=MAX_TYPE_CHARS,
        description="Compound open-vocabulary label, e.g. count_mismatch, color_hallucination.",
    )
    detail: str = Field(max_length=MAX_DETAIL_CHARS)
    severity: Severity = Field(
        description="1 peripheral/stylistic, 2 secondary detail, 3 primary subject, count, "
        "identity, relation or fabrication. Null lets the keyword rule decide.",
    )
    severity_raw: str | None = Field(
        default=None, max_length=MAX_TYPE_CHARS,
        description="a severity the judge wrote that is not 1, 2, 3 or NA (e.g. `4`, `high`), "
        "kept as written; `severity` is then null and the keyword rule decides. Not part of "
        "the decoding schema (a constrained judge cannot write one).",
    )

    @field_validator("type")
    @classmethod
    def _type_visible(cls, value: str) -> str:
        return _visible(value)


class JudgedDifference(BaseModel):
    """One atomic visual claim on which the actor and the reference differ, decided on the image.

    A claim is null where that caption is silent; one that shows nothing (only spaces or
    invisible characters) is refused rather than read as silence or as a claim.
    """

    model_config = _ANSWER

    aspect: str = Field(min_length=1, max_length=MAX_ASPECT_CHARS)
    actor_claim: str | None = Field(max_length=MAX_CLAIM_CHARS)
    reference_claim: str | None = Field(max_length=MAX_CLAIM_CHARS)
    actor_span: str | None = Field(max_length=MAX_CLAIM_CHARS)
    reference_span: str | None = Field(max_length=MAX_CLAIM_CHARS)
    judgment: Judgment = Field(strict=False)
    actor_error: ErrorLabel | None
    reference_error: ErrorLabel | None
    confidence: float | None = Field(ge=0.0, le=1.0)

    @field_validator("aspect")
    @classmethod
    def _aspect_visible(cls, value: str) -> str:
        return _visible(value)

    @field_validator("actor_claim", "reference_claim")
    @classmethod
    def _claim_visible(cls, value: str | None) -> str | None:
        if value is not None and is_blank(value):
            raise ValueError("a claim must be null or show some text, not only invisible "
                             "characters")
        return value

    @model_validator(mode="after")
    def _one_side_claims_something(self) -> JudgedDifference:
        if self.actor_claim is None and self.reference_claim is None:
            raise ValueError("a difference needs an actor_claim or a reference_claim (both null)")
        return self


class JudgeOutput(BaseModel):
    """The whole answer of one judge call for one (image, actor caption, reference caption).

    Both keys are required: `{"differences": [], "overall": "tie"}` is an answer that found no
    difference; `{}` or `{"differences": null}` is no answer at all.
    """

    model_config = _ANSWER

    differences: list[JudgedDifference] = Field(max_length=MAX_DIFFERENCES)
    overall: Overall | None = Field(strict=False)


# xgrammar 0.2.8 (also inside vLLM 0.32) fails to compile a repetition bound above 128
# (mlc-ai/xgrammar#647); longer bounds are written as a run of repetitions of at most 128 each,
# which matches exactly the same strings.
_MAX_REPEAT = 128
# No control characters, quotes or backslashes: xgrammar's JSON string rule otherwise lets raw
# control characters through, and escapes would make the length bound count bytes, not chars.
_CHAR = "[^\\x00-\\x1f\\\\\"]"
_FIRST_CHAR = "[^\\x00-\\x20\\\\\"]"  # a present claim starts with a visible character


def _repeat(char: str, low: int, high: int) -> str:
    """`char{low,high}` as repetitions of at most `_MAX_REPEAT` each.

    >>> _repeat("a", 1, 300)
    'a{1,128}a{0,128}a{0,44}'
    """
    parts = []
    while True:
        upper = min(high, _MAX_REPEAT)
        lower = min(low, upper)
        parts.append(f"{char}{{{lower},{upper}}}")
        high, low = high - upper, low - lower
        if high <= 0:
            return "".join(parts)


def _length_pattern(min_length: int, max_length: int) -> str:
    return f"^{_repeat(_CHAR, min_length, max_length)}$"


def _claim_pattern(max_length: int) -> str:
    if max_length <= 1:
        return f"^{_FIRST_CHAR}$"
    return f"^{_FIRST_CHAR}{_repeat(_CHAR, 0, max_length - 1)}$"


def decoding_schema(
    *, max_differences: int = MAX_DIFFERENCES, max_string_chars: int | None = None
) -> dict[str, Any]:
    """JSON schema for constrained decoding, derived from `JudgeOutput`.

    String `maxLength`/`minLength` become equivalent `pattern`s (xgrammar 0.2.8 lets control
    characters through when they are present); `max_string_chars` tightens every string bound,
    which keeps small or random-weight models from rambling into `max_new_tokens`. Every key is
    required, and a difference is one of two shapes (an actor claim, with or without a reference
    claim; or a reference claim alone), so decoding cannot produce the claimless difference that
    `JudgedDifference` rejects.
    """
    schema = copy.deepcopy(JudgeOutput.model_json_schema())

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "string" and "enum" not in node:
                upper = node.pop("maxLength", MAX_CLAIM_CHARS)
                lower = node.pop("minLength", 0)
                if max_string_chars is not None:
                    upper = min(upper, max_string_chars)
                # a required text starts with a visible character (validation refuses blanks)
                node["pattern"] = (_claim_pattern(upper) if lower >= 1
                                   else _length_pattern(lower, upper))
            for key in ("title", "description", "default"):
                node.pop(key, None)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    # a constrained judge writes a severity of the schema or none: nothing to keep raw
    schema["$defs"]["ErrorLabel"]["properties"].pop("severity_raw")
    visit(schema)
    schema["properties"]["differences"]["maxItems"] = max_differences
    schema["required"] = ["differences", "overall"]
    for definition in schema.get("$defs", {}).values():
        if "properties" in definition:
            definition["required"] = list(definition["properties"])

    difference = schema["$defs"]["JudgedDifference"]
    claim_chars = min(MAX_CLAIM_CHARS, max_string_chars or MAX_CLAIM_CHARS)
    present = {"type": "string", "pattern": _claim_pattern(claim_chars)}
    with_actor = copy.deepcopy(difference)
    with_actor["properties"]["actor_claim"] = present
    with_actor["properties"]["reference_claim"] = {"anyOf": [dict(present), {"type": "null"}]}
    reference_only = copy.deepcopy(difference)
    reference_only["properties"]["actor_claim"] = {"type": "null"}
    reference_only["properties"]["reference_claim"] = dict(present)
    schema["$defs"]["JudgedDifference"] = {"anyOf": [with_actor, reference_only]}
    return schema


class Verdict(StrEnum):
    """What the image says about one claim, in the verification pass."""

    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    UNCERTAIN = "uncertain"


class ClaimVerdict(BaseModel):
    """The verifier's decision on one claim, by its id (`3A`: actor claim of difference 3)."""

    model_config = _ANSWER

    claim_id: str = Field(pattern=r"^[0-9]{1,3}[AR]$")
    verdict: Verdict = Field(strict=False)


class VerificationOutput(BaseModel):
    """The answer of one verification call: a verdict per claim it was asked about."""

    model_config = _ANSWER

    verdicts: list[ClaimVerdict] = Field(max_length=2 * MAX_DIFFERENCES)


def verification_schema(
    claim_ids: Sequence[str] | None = None, *, max_claims: int = 2 * MAX_DIFFERENCES
) -> dict[str, Any]:
    """JSON schema for constrained decoding of verification answers, derived from the model.

    With `claim_ids` (the claims one request asks about) the answer must be exactly one verdict
    per claim, in order, each naming its claim: even a weak model then cannot answer about a
    claim it was not asked, or skip one; only the verdicts are its to choose.
    """
    schema = copy.deepcopy(VerificationOutput.model_json_schema())

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("title", "description", "default"):
                node.pop(key, None)
            if "properties" in node:
                node["required"] = list(node["properties"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    verdicts = schema["properties"]["verdicts"]
    verdicts["maxItems"] = max_claims
    if claim_ids is not None:
        verdict = schema["$defs"]["ClaimVerdict"]
        positions = []
        for claim_id in claim_ids:
            item = copy.deepcopy(verdict)
            item["properties"]["claim_id"] = {"type": "string", "const": claim_id}
            positions.append(item)
        verdicts.pop("items")
        verdicts.update(prefixItems=positions, items=False, minItems=len(positions),
                        maxItems=len(positions))
        del schema["$defs"]["ClaimVerdict"]
    return schema
