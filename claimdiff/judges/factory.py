"""Build the configured backend. A plain if/else over a handful of backends: no registry."""

from __future__ import annotations

from typing import Any

from claimdiff.config import JudgeConfig
from claimdiff.judges.base import JudgeBackend
from claimdiff.schemas.judge import decoding_schema


def model_id(config: JudgeConfig) -> str:
    """The model identity written to every row, known without loading the model."""
    return "labels" if config.backend == "labels" else str(config.model)


def judge_schema(config: JudgeConfig) -> dict[str, Any] | None:
    """The JSON schema that constrains decoding, or None where decoding is free."""
    if not config.constrained or config.output_format != "json":
        return None
    return decoding_schema(
        max_differences=config.max_differences, max_string_chars=config.max_string_chars)


def build_backend(config: JudgeConfig) -> JudgeBackend:
    if config.backend == "labels":
        from claimdiff.judges.labels_backend import LabelsBackend

        return LabelsBackend()
    assert config.model is not None  # JudgeConfig validates this
    schema = judge_schema(config)
    if config.backend == "transformers":
        from claimdiff.judges.transformers_backend import TransformersBackend

        return TransformersBackend(
            model=config.model, json_schema=schema, device=config.device, dtype=config.dtype,
            trust_remote_code=config.trust_remote_code)
    if config.backend == "vllm":
        from claimdiff.judges.vllm_backend import VllmBackend

        options = config.vllm
        return VllmBackend(
            config.model, schema, dtype=options.dtype, max_model_len=options.max_model_len,
            max_num_seqs=options.max_num_seqs,
            gpu_memory_utilization=options.gpu_memory_utilization,
            kv_cache_memory_bytes=options.kv_cache_memory_bytes,
            tensor_parallel_size=options.tensor_parallel_size,
            structured_outputs_backend=options.structured_outputs_backend,
            disable_any_whitespace=options.disable_any_whitespace,
            limit_mm_per_prompt=dict(options.limit_mm_per_prompt),
            enforce_eager=options.enforce_eager, seed=config.seed,
            trust_remote_code=config.trust_remote_code,
            max_tokens_retry_factor=options.max_tokens_retry_factor)
    from claimdiff.judges.openai_backend import OpenAIBackend

    api = config.openai
    return OpenAIBackend(
        api.base_url, config.model, schema, api_key_env=api.api_key_env,
        server_type=api.server_type, timeout_s=api.timeout_s, max_retries=api.max_retries,
        backoff_s=api.backoff_s, max_concurrency=api.max_concurrency,
        image_max_side=api.image_max_side, image_quality=api.image_quality,
        start_server={"args": list(api.server_args)} if api.start_server else None)
