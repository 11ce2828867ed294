"""Build the configured backend. A plain if/else over a handful of backends: no registry."""

from __future__ import annotations

import os
import re
from typing import Any

from claimdiff.config import JudgeConfig
from claimdiff.errors import ConfigError
from claimdiff.judges.base import JudgeBackend
from claimdiff.schemas.judge import decoding_schema


def model_id(config: JudgeConfig) -> str:
    """The model identity written to every row, known without loading the model."""
    return "labels" if config.backend == "labels" else str(config.model)


# What a Hugging Face hub id looks like ("org/name" or "name"); anything else is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def check_model_source(config: JudgeConfig) -> None:
    """Fail before the pipeline starts when `judge.model` names a local path that is not there.

    Without this, a typo in a path surfaces as a model-loading crash on a worker, minutes later.
    A hub id cannot be checked offline; the backend resolves it (from the local cache).
    """
    loads_weights = config.backend in ("transformers", "vllm") or (
        config.backend == "openai" and config.openai.start_server)
    model = config.model
    if not loads_weights or model is None or "://" in model:
        return
    if model.startswith("~"):
        # the backends take the path as given; a shell expands `~`, a config file does not
        raise ConfigError(f"judge.model {model!r}: write the home folder out (no `~`)")
    if os.path.exists(model):
        if not os.path.isdir(model):
            raise ConfigError(f"judge.model {model!r} is a file; a model is a folder")
        return
    looks_like_path = model.startswith(("/", "./", "../")) or not _HUB_ID.match(model)
    if looks_like_path:
        raise ConfigError(f"judge.model {model!r}: no such folder")


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
