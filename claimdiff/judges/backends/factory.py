"""Build the configured backend. A plain if/else over a handful of backends: no registry.

Each backend takes its option model (`judge.vllm`, `judge.openai`) as it is: `config.py`
validated it, and nothing is copied field by field.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from claimdiff.config import JudgeConfig
from claimdiff.errors import ConfigError
from claimdiff.judges.backends.base import JudgeBackend

if TYPE_CHECKING:
    from claimdiff.judges.judge_setup import JudgeSetup

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
