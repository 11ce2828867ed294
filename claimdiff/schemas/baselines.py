"""Judge outputs of the released ClaimDiff-RL code's two other judges.

- `HallVsMissOutput`: the `hall_vs_miss` prompt's blocks. The judge compares the predicted
  caption (the actor) with the ground-truth caption (the reference) and classifies each
  difference as a contradiction, extra information or a missing fact, verified against the image.
- `HolisticOutput`: the holistic baseline's single 0-10 score of the whole caption.

Both are records of their own kind (a different judge task), parsed by
`claimdiff.judges.formats.hall_vs_miss` and `claimdiff.judges.formats.holistic`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from claimdiff.schemas.judge import MAX_CLAIM_CHARS, MAX_DETAIL_CHARS, MAX_DIFFERENCES


class HallType(StrEnum):
    """What kind of difference a `hall_vs_miss` block is."""

    CONTRADICTION = "contradiction"  # the prediction says something the ground truth contradicts
    EXTRA_INFO = "extra_info"  # the prediction says something the ground truth does not
    MISSING_FACT = "missing_fact"  # the ground truth says something the prediction does not


class HallVerification(StrEnum):
    """The prediction's claim against the image (`missing` for a missing fact)."""

    VERIFIED = "verified"
    FALSE = "false"
    AMBIGUOUS = "ambiguous"
    MISSING = "missing"


class HallCategory(StrEnum):
    NATURAL = "natural"  # objects, people, animals, actions, attributes, spatial relations
    DESIGN = "design"  # text, typography, layout, logos, brand names, UI and graphic design


class HallVsMissDifference(BaseModel):
    """One `[DIFFERENCE n]` block of a `hall_vs_miss` answer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: HallType
    content: str = Field(default="", max_length=MAX_CLAIM_CHARS,
                         description="the claim (from the prediction; for a missing fact, what "
                         "the ground truth states)")
    category: HallCategory | None = None
    verification: HallVerification
    reason: str = Field(default="", max_length=MAX_DETAIL_CHARS)
    is_hallucination: bool | None = Field(
        default=None, description="as the judge wrote it; the released reward reads "
        "`verification` instead, and so does claimdiff")


class HallVsMissOutput(BaseModel):
    """The whole answer of one `hall_vs_miss` judge call."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    differences: list[HallVsMissDifference] = Field(max_length=MAX_DIFFERENCES)


class HolisticOutput(BaseModel):
    """The holistic baseline's answer: one integer score of the whole caption, 0 to 10."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    score: int = Field(ge=0, le=10)
    rationale: str = Field(default="", max_length=MAX_DETAIL_CHARS)
