"""Rows that flow through the pipeline and land in Parquet: input, difference, reward, failure.

Every Parquet schema is derived from these models (`schemas.arrow`); nothing writes one by hand.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from claimdiff.schemas.judge import Judgment


class Outcome(StrEnum):
    """What a difference means for each caption (DESIGN §2, derived in `rewards.outcomes`)."""

    ACTOR_HALLUCINATION = "actor_hallucination"
    ACTOR_EXTRA_CORRECT = "actor_extra_correct"
    ACTOR_OMISSION = "actor_omission"
    REFERENCE_HALLUCINATION = "reference_hallucination"
    REFERENCE_ERROR = "reference_error"
    SPURIOUS = "spurious"
    UNVERIFIABLE = "unverifiable"


class DifferenceKind(StrEnum):
    ACTOR_ONLY = "actor_only"
    REFERENCE_ONLY = "reference_only"
    CONFLICT = "conflict"


class CanonicalType(StrEnum):
    """The fixed taxonomy open-vocabulary error types are mapped onto (`rewards.taxonomy`)."""

    OBJECT_EXISTENCE = "object_existence"
    COUNT = "count"
    COLOR = "color"
    MATERIAL = "material"
    SIZE = "size"
    SHAPE = "shape"
    SPATIAL_RELATION = "spatial_relation"
    ACTION_POSE = "action_pose"
    TEXT_OCR = "text_ocr"
    SCENE_SETTING = "scene_setting"
    STYLE = "style"
    OTHER = "other"


class SeveritySource(StrEnum):
    JUDGE = "judge"
    RULE = "rule"


class Stage(StrEnum):
    """Pipeline stages that can fail a row; the `stage` column of `failures/`."""

    READ_MANIFEST = "read_manifest"
    VALIDATE = "validate"
    LOAD_IMAGE = "load_image"
    JUDGE = "judge"
    VERIFY = "verify"
    DERIVE = "derive"


class RowStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


class DecodingParams(BaseModel):
    """Every decoding setting that can change a judge answer; carried by every judged row."""

    model_config = ConfigDict(frozen=True)

    max_new_tokens: int
    temperature: float
    retry_temperature: float
    seed: int
    max_attempts: int
    constrained: bool
    max_differences: int
    max_string_chars: int | None
    # fields below were added after the first runs were written: defaults keep those readable
    output_format: str = "json"
    mode: str = "single_pass"
    verify_granularity: str | None = None
    verify_rule: str | None = None
    # what the judge sees and computes with: a smaller image or another dtype changes answers
    image_max_side: int | None = None
    image_quality: int | None = Field(
        default=None, description="JPEG quality images are re-encoded at (openai backend)")
    dtype: str | None = None


class InputRow(BaseModel):
    """One validated manifest row: one actor caption of one (image, reference)."""

    model_config = ConfigDict(frozen=True, strict=True)

    manifest: str
    row_index: int = Field(ge=0, description="0-based position of the row in its manifest")
    image: str = Field(min_length=1, description="image URI as written in the manifest")
    image_uri: str = Field(min_length=1, description="image URI resolved against the manifest")
    reference: str = Field(min_length=1)
    caption: str
    sample_id: str = Field(min_length=1)
    actor_id: str = Field(min_length=1)
    gold: str | None = Field(default=None, description="gold judge output, as JSON text")
    metadata: str | None = Field(default=None, description="other manifest columns, JSON object")


class DifferenceRow(BaseModel):
    """One judged difference with its derived outcome and types: a row of `differences/`."""

    run_id: str
    sample_id: str
    actor_id: str
    manifest: str = Field(description="the manifest the row came from")
    row_index: int = Field(description="0-based position of the row in its manifest")
    difference_index: int
    aspect: str
    kind: DifferenceKind
    actor_claim: str | None
    reference_claim: str | None
    actor_span: str | None
    reference_span: str | None
    judgment: Judgment
    first_judgment: Judgment | None = Field(
        default=None, description="the first pass's judgment, in two-pass mode")
    confidence: float | None = Field(ge=0.0, le=1.0)
    outcomes: list[Outcome]
    actor_erred: bool
    reference_erred: bool
    actor_error_type: str | None
    actor_error_detail: str | None
    actor_canonical_type: CanonicalType | None
    actor_severity: int | None = Field(ge=1, le=3)
    actor_severity_source: SeveritySource | None
    reference_error_type: str | None
    reference_error_detail: str | None
    reference_canonical_type: CanonicalType | None
    reference_severity: int | None = Field(ge=1, le=3)
    reference_severity_source: SeveritySource | None
    image_sha256: str
    judge_model: str
    prompt_version: str
    decoding: DecodingParams
    cache_key: str


class TypeCounts(BaseModel):
    """Actor errors per canonical type (one field per `CanonicalType`)."""

    object_existence: int = 0
    count: int = 0
    color: int = 0
    material: int = 0
    size: int = 0
    shape: int = 0
    spatial_relation: int = 0
    action_pose: int = 0
    text_ocr: int = 0
    scene_setting: int = 0
    style: int = 0
    other: int = 0


class RewardStats(BaseModel):
    """Per (sample, actor) statistics that every reward preset is computed from."""

    n_differences: int = Field(description="real differences: all but spurious and unverifiable")
    n_actor_hallucination: int
    n_actor_omission: int
    n_actor_extra_correct: int
    n_reference_hallucination: int
    n_reference_error: int
    n_spurious: int
    n_unverifiable: int
    actor_errors: int
    reference_errors: int
    actor_severity_1: int
    actor_severity_2: int
    actor_severity_3: int
    actor_weighted_errors: float
    reference_weighted_errors: float
    weighted_hallucination: float
    weighted_omission: float
    relative_denominator: float = Field(
        description="sum over real differences of the larger side weight (at least 1)"
    )
    actor_errors_by_type: TypeCounts
    actor_words: int
    reference_words: int
    actor_hedges: int
    judge_attempts: int
    verify_disagreements: int = Field(
        default=0, description="differences whose two passes disagreed (two-pass mode)")


class SwapCheck(BaseModel):
    """One row judged again with the captions' roles swapped (`judges.swap`)."""

    original_differences: int
    swapped_differences: int
    matched: int = Field(description="differences found in both positions")
    judgment_agreements: int = Field(description="matched ones whose mirrored judgment agrees")


class RewardValue(BaseModel):
    """One configured reward for one row: preset name, kind, version and value."""

    name: str
    kind: str
    version: int
    value: float


class RewardRow(BaseModel):
    """One row of `rewards/`: every validated input row gets one, failed rows with null rewards."""

    run_id: str
    sample_id: str
    actor_id: str
    manifest: str = Field(description="the manifest the row came from")
    row_index: int = Field(description="0-based position of the row in its manifest")
    image: str = Field(default="", description="image URI as written in the manifest")
    image_uri: str = Field(description="image URI resolved against the manifest")
    caption: str = Field(default="", description="the actor caption judged")
    reference: str = Field(default="", description="the reference caption")
    status: RowStatus
    failure_stage: Stage | None = None
    failure_reason: str | None = None
    reward: float | None = Field(default=None, description="value of the primary preset")
    rewards: list[RewardValue] = Field(default_factory=list)
    stats: RewardStats | None = None
    swap: SwapCheck | None = Field(default=None, description="position-swap check, if sampled")
    image_sha256: str | None = None
    judge_model: str | None = None
    prompt_version: str | None = None
    decoding: DecodingParams | None = None
    cache_key: str | None = None
    raw_answer: str | None = Field(
        default=None, description="the judge's raw answer (first pass), kept for every judged "
        "row so a parse can be audited and redone without calling the judge")
    verify_answers: list[str] | None = Field(
        default=None, description="the raw verification answers (two-pass mode), in order")
    metadata: str | None = None


class FailureRow(BaseModel):
    """One input row that could not be processed, with the stage and a clear reason."""

    run_id: str
    stage: Stage
    error_class: str
    message: str
    manifest: str
    row_index: int | None = None
    sample_id: str | None = None
    actor_id: str | None = None
    image_uri: str | None = None
    raw_input: str | None = Field(default=None, description="the row or request, as JSON text")
    raw_output: str | None = Field(default=None, description="the judge's last raw answer")
    attempts: int | None = None
    judge_model: str | None = Field(default=None, description="where a judge call failed")
    prompt_version: str | None = Field(default=None, description="where a judge call failed")
