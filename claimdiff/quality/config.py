"""The quality report's configuration: thresholds, drift limits and suite extensions.

Loaded from a YAML file of its own (`claimdiff report RUN --config quality.yaml`), separate from
the judge configuration: a team tunes what it accepts from a run without touching how runs are
made. The file is untrusted: read with a size bound, `yaml.safe_load`, no aliases, and validated
into the models below (unknown keys are errors).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from claimdiff.errors import ConfigError
from claimdiff.schemas.rows import Stage

MAX_CONFIG_BYTES = 256 * 1024
MAX_EXTRA_EXPECTATIONS = 200
_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,120}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """Run health limits. A share is a fraction in [0, 1] of the entities named."""

    max_failure_share: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="failed input rows / input rows; default: the run's own "
        "run.max_failure_share from run.json, so the report agrees with the judge's exit status")
    max_failure_share_by_stage: dict[Stage, float] = Field(
        default_factory=dict,
        description="per pipeline stage: input rows failed at that stage / input rows")
    max_failure_share_by_reason: dict[str, float] = Field(
        default_factory=dict,
        description="per failure reason (the error class in failures/): failed with that reason "
        "/ input rows")
    max_parse_retry_share: float = Field(
        default=0.25, ge=0.0, le=1.0,
        description="judged rows whose answer needed more than one attempt / judged rows")
    max_spurious_share: float = Field(
        default=0.2, ge=0.0, le=1.0,
        description="differences judged both_supported (not a real difference) / differences")
    max_unverifiable_share: float = Field(
        default=0.2, ge=0.0, le=1.0,
        description="differences judged uncertain / differences")
    max_zero_difference_image_share: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="judged images where no caption of the image has any difference / judged "
        "images (a judge that answers 'no differences' to everything reads 1.0)")
    max_span_mismatch_share: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="judged rows with a difference whose actor span is not in the caption or "
        "whose reference span is not in the reference (case and spacing ignored) / judged rows")
    max_verify_disagreement_rate: float = Field(
        default=0.3, ge=0.0, le=1.0,
        description="two-pass runs: differences whose passes disagreed / differences verified "
        "(run.json judge_stats)")
    min_swap_difference_consistency: float = Field(
        default=0.7, ge=0.0, le=1.0,
        description="position-swap runs: differences found in both caption orders (run.json)")
    min_swap_judgment_consistency: float = Field(
        default=0.7, ge=0.0, le=1.0,
        description="position-swap runs: matched differences whose mirrored judgment agrees")
    reward_bounds: tuple[float, float] = Field(
        default=(0.0, 1.0),
        description="closed range every reward value must lie in (all built-in presets)")
    reward_bounds_by_preset: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="per preset name, overriding reward_bounds")

    @field_validator("max_failure_share_by_stage", "max_failure_share_by_reason")
    @classmethod
    def _shares(cls, value: dict[Any, float]) -> dict[Any, float]:
        if any(not 0.0 <= share <= 1.0 for share in value.values()):
            raise ValueError("shares must lie in [0, 1]")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Thresholds:
        for name, (low, high) in [("reward_bounds", self.reward_bounds),
                                  *self.reward_bounds_by_preset.items()]:
            if not low <= high:
                raise ValueError(f"reward bounds of {name}: {low} > {high}")
        return self


class DriftConfig(_Strict):
    """Limits on the distance between a run and a baseline run (`--baseline`)."""

    max_type_distance: float = Field(
        default=0.2, ge=0.0, le=1.0,
        description="total variation distance between the canonical-type distributions of "
        "the actor errors (half the L1 distance of the shares: the share of errors that would "
        "have to change type)")
    max_severity_distance: float = Field(
        default=0.2, ge=0.0, le=1.0,
        description="total variation distance between the severity (1, 2, 3) distributions of "
        "the actor errors")
    max_reward_mean_shift: float = Field(
        default=0.1, ge=0.0,
        description="largest absolute difference of a preset's mean reward over judged rows")
    min_errors: int = Field(
        default=10, ge=1,
        description="distributions with fewer actor errors than this (in either run) are not "
        "compared: the distance of tiny samples is noise")


class Where(_Strict):
    """A row filter for one expectation: only rows where `column` satisfies `op` are checked."""

    column: str = Field(min_length=1, max_length=200)
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "is_not_null"]
    value: Any = Field(default=None, description="the operand (a list for in / not_in)")

    @model_validator(mode="after")
    def _operand(self) -> Where:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"where: {self.op} needs a list value")
        if self.op in ("is_null", "is_not_null") and self.value is not None:
            raise ValueError(f"where: {self.op} takes no value")
        return self


class ExtraExpectation(_Strict):
    """A Great Expectations expectation added to the built-in suite from the config file."""

    id: str = Field(pattern=_ID_PATTERN, description="unique id, reported and used in --json")
    frame: str = Field(
        min_length=1, max_length=80,
        description="the table it runs on (README: Quality report lists them), e.g. rewards, "
        "differences, rewards.rewards")
    type: str = Field(
        pattern=r"^expect_[a-z0-9_]{1,100}$",
        description="a Great Expectations expectation type, e.g. "
        "expect_column_values_to_be_between")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="its arguments")
    where: Where | None = None
    description: str = Field(default="", max_length=500)

    @field_validator("kwargs")
    @classmethod
    def _no_free_form_conditions(cls, value: dict[str, Any]) -> dict[str, Any]:
        # string row conditions reach pandas' query parser: use the structured `where` instead
        refused = {"row_condition", "condition_parser", "meta", "notes"} & set(value)
        if refused:
            raise ValueError(f"kwargs may not set {sorted(refused)} (use `where` for a filter)")
        return value


class QualityConfig(_Strict):
    """Everything `claimdiff report` can be told: thresholds, drift limits, extra checks."""

    version: Literal[1] = Field(default=1, description="version of this file's format")
    suite_label: str = Field(
        default="", max_length=80,
        description="the team's own name/version for its extensions, recorded in the report")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    expectations: list[ExtraExpectation] = Field(
        default_factory=list, max_length=MAX_EXTRA_EXPECTATIONS,
        description="expectations added to the built-in ones")
    disable: list[str] = Field(
        default_factory=list, max_length=MAX_EXTRA_EXPECTATIONS,
        description="ids of built-in expectations to leave out (fnmatch patterns allowed)")

    @model_validator(mode="after")
    def _unique_ids(self) -> QualityConfig:
        ids = [e.id for e in self.expectations]
        if len(ids) != len(set(ids)):
            raise ValueError(f"expectation ids must be unique: {ids}")
        return self


def _refuse_aliases(text: str) -> None:
    """Anchors and aliases let a small file expand into a huge structure when walked."""
    import yaml

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError("quality config: YAML aliases are not allowed")


def parse_quality_config(text: str | None,
                         overrides: dict[str, Any] | None = None) -> QualityConfig:
    """Validate YAML text plus dotted overrides (`thresholds.max_spurious_share`)."""
    import yaml

    data: Any = {}
    if text:
        if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
            raise ConfigError(f"quality config is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            _refuse_aliases(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"quality config is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("quality config must be a YAML mapping at the top level")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {dotted}: {part} is not a mapping")
            node = child
        node[leaf] = value
    try:
        return QualityConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"invalid quality config: {exc}") from exc


def load_quality_config(uri: str | None,
                        overrides: dict[str, Any] | None = None) -> QualityConfig:
    """Read (at most `MAX_CONFIG_BYTES`) and validate a quality config file on any fsspec URL."""
    if uri is None:
        return parse_quality_config(None, overrides)
    import fsspec

    try:
        with fsspec.open(uri, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read quality config {uri}: {exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"quality config {uri} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"quality config {uri} is not UTF-8: {exc}") from exc
    return parse_quality_config(text, overrides)
