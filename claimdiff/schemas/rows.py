"""Rows that flow through the pipeline and land in Parquet: input, difference, reward, failure.

Every Parquet schema is derived from these models (`schemas.arrow`); nothing writes one by hand.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from claimdiff.schemas.judge import Judgment


class Outcome(StrEnum):
    """What a difference means for each caption (the outcome table, `rewards.outcomes`)."""

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
    ATTRIBUTE = "attribute"  # an attribute error whose dimension the label does not name
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
    # The judge's own error labels per side, whatever the outcome says (a side the image
    # supports may still carry a label): what `labels` counting reads, and what lets
    # `claimdiff rewards` re-derive types and severities under another configuration.
    labels_recorded: bool = Field(
        default=False, description="the label fields below were written (runs before them "
        "have False; their labels are read back from `rewards.raw_answer`)")
    actor_label_type: str | None = Field(default=None, description="the judge's error type "
                                         "for the actor (caption A), as written")
    actor_label_detail: str | None = None
    actor_label_severity: int | None = Field(default=None, description="the judge's severity, "
                                             "1-3, for the actor")
    actor_label_severity_raw: str | None = Field(
        default=None, description="a severity the judge wrote that is not 1-3 or NA")
    reference_label_type: str | None = None
    reference_label_detail: str | None = None
    reference_label_severity: int | None = None
    reference_label_severity_raw: str | None = None
    # the hall_vs_miss format's own fields (null in the other formats)
    hall_type: str | None = Field(default=None,
                                  description="contradiction | extra_info | missing_fact")
    hall_verification: str | None = Field(default=None,
                                          description="verified | false | ambiguous | missing")
    hall_category: str | None = Field(default=None, description="natural | design")
    hall_is_hallucination: bool | None = None


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
    attribute: int = 0
    other: int = 0


class Counts(BaseModel):
    """Error counts of one row under one way of counting; what the reward presets read.

    `outcomes` counting (claimdiff's) derives them from which claims exist and the judgment;
    `labels` counting (the released ClaimDiff-RL code's) from the judge's own error labels:
    a side errs where its error type is not none, and every listed block is a difference. In
    the `hall_vs_miss` format, labels count its own fields (see `rewards.stats`).
    """

    differences: int = Field(description="outcomes: real differences (not spurious or "
                             "unverifiable); labels: every block the judge listed")
    actor_errors: int
    reference_errors: int
    hallucinations: int = Field(description="actor errors where the actor claims something")
    omissions: int = Field(description="actor errors where only the reference claims")
    extra_correct: int = Field(description="correct details only the actor gives")
    judged_actor: int = Field(description="differences judged for the actor (caption A)")
    judged_reference: int = Field(description="differences judged for the reference (B)")
    actor_weighted: float = Field(description="actor errors, each weighted by its severity")
    reference_weighted: float
    weighted_hallucination: float
    weighted_omission: float
    weighted_differences: float = Field(
        description="sum over the differences of the larger side weight (at least 1)")


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
    # fields below were added after the first runs were written: defaults keep those readable
    judged_actor: int = Field(default=0, description="real differences judged for the actor")
    judged_reference: int = Field(default=0,
                                  description="real differences judged for the reference")
    overall: str | None = Field(default=None, description="the judge's overall verdict: "
                                "actor | reference | tie, null where it gave none")
    actor_ambiguity: int = Field(
        default=0, description="ambiguity tokens in the caption, by the released code's "
        "pattern (`rewards.ambiguity`): what the presets' ambiguity penalty reads")
    actor_think_and_answer: bool = Field(
        default=False, description="the caption has <think>...</think> and <answer>...</answer>")
    actor_answer_empty: bool = Field(
        default=False, description="the caption's answer text (inside <answer> where present) "
        "is empty")
    holistic_score: int | None = Field(
        default=None, description="the holistic judge's 0-10 score, where one was asked")
    labels: Counts | None = Field(
        default=None, description="the `labels` counting of the row (null in runs written "
        "before it; `claimdiff rewards` recomputes it from the stored answers)")


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
    value: float | None = Field(description="null where the preset has nothing to score (a "
                                "holistic preset on a row without a holistic score)")


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
    preset_values: dict[str, float | None] | None = Field(
        default=None, description="one value per configured preset, by preset name: a struct "
        "column in the run's Parquet (`preset_values.relative` in DuckDB); null for failed rows")
    stats: RewardStats | None = None
    swap: SwapCheck | None = Field(default=None, description="position-swap check, if sampled")
    image_sha256: str | None = None
    judge_model: str | None = None
    prompt_version: str | None = None
    decoding: DecodingParams | None = None
    cache_key: str | None = None
    judged_in: str | None = Field(
        default=None, description="run id of the run whose judge call answered this row: "
        "this run's own, or the earlier run its answer was reused from (--reuse, --resume)")
    raw_answer: str | None = Field(
        default=None, description="the judge's raw answer (first pass), kept for every judged "
        "row so a parse can be audited and redone without calling the judge")
    verify_answers: list[str] | None = Field(
        default=None, description="the raw verification answers (two-pass mode), in order")
    holistic_answer: str | None = Field(
        default=None, description="the raw answer of the holistic call, where a holistic "
        "preset asked for one")
    metadata: str | None = None

    @field_validator("preset_values", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        # a map column reads back from Parquet as a list of (key, value) pairs
        if isinstance(value, list):
            return dict(value)
        return value


@functools.cache
def _reward_row_model(names: tuple[str, ...]) -> type[RewardRow]:
    fields: dict[str, Any] = {
        f"preset_{index}": (float | None, Field(default=None, alias=name))
        for index, name in enumerate(names)}
    values = create_model("PresetValues", **fields)
    return create_model(
        "RewardRow", __base__=RewardRow, preset_values=(
            values | None, Field(default=None, description="one value per configured preset")))


def reward_row_model(preset_names: Sequence[str]) -> type[RewardRow]:
    """`RewardRow` with `preset_values` as a struct of one float per preset (in this order).

    The Parquet schema of `rewards/` is derived from this model: a struct field per preset
    makes one preset's value a plain expression (`preset_values.relative` in DuckDB,
    `pl.col("preset_values").struct.field("relative")` in polars). Rows themselves stay plain
    `RewardRow`s; their `preset_values` dict fills the struct by name.
    """
    return _reward_row_model(tuple(preset_names))


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
