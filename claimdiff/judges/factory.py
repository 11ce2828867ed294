"""Build the configured backend. A plain if/else over a handful of backends: no registry."""

from __future__ import annotations

from claimdiff.config import JudgeConfig
from claimdiff.judges.base import JudgeBackend
from claimdiff.schemas.judge import decoding_schema


def model_id(config: JudgeConfig) -> str:
    """The model identity written to every row, known without loading the model."""
    return "labels" if config.backend == "labels" else str(config.model)


def build_backend(config: JudgeConfig) -> JudgeBackend:
    if config.backend == "labels":
        from claimdiff.judges.labels_backend import LabelsBackend

        return LabelsBackend()
    from claimdiff.judges.transformers_backend import TransformersBackend

    schema = (
        decoding_schema(
            max_differences=config.max_differences, max_string_chars=config.max_string_chars
        )
        if config.constrained and config.output_format == "json"
        else None
    )
    assert config.model is not None  # JudgeConfig validates this
    return TransformersBackend(
        model=config.model,
        json_schema=schema,
        device=config.device,
        dtype=config.dtype,
        trust_remote_code=config.trust_remote_code,
    )
