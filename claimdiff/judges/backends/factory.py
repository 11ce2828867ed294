"""Build the configured backend. A plain if/else over a handful of backends: no registry.

Each backend takes its option model (`judge.vllm`, `judge.openai`) as it is: `config.py`
validated it, and nothing is copied field by field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from claimdiff.judges.backends.base import JudgeBackend

if TYPE_CHECKING:
    from claimdiff.judges.judge_setup import JudgeSetup

def build_backend(setup: JudgeSetup) -> JudgeBackend:
    """The backend `setup.config.backend` names, loaded (a model backend loads its weights)."""
    config = setup.config
    if config.backend == "labels":
        from claimdiff.judges.backends.labels import LabelsBackend

        return LabelsBackend(config.output_format)
    assert config.model is not None  # JudgeConfig validates this
    if config.backend == "transformers":
        from claimdiff.judges.backends.transformers import TransformersBackend

        return TransformersBackend(
            model=config.model, json_schema=setup.schema, device=config.device,
            dtype=config.dtype, trust_remote_code=config.trust_remote_code)
    if config.backend == "vllm":
        from claimdiff.judges.backends.vllm import VllmBackend

        return VllmBackend(config.model, setup.schema, config.vllm, seed=config.seed,
                           trust_remote_code=config.trust_remote_code)
    from claimdiff.judges.backends.openai import OpenAIBackend

    return OpenAIBackend(config.model, setup.schema, config.openai)
