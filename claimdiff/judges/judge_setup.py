"""Everything a run's judging needs that does not change during the run, computed once.

`JudgeSetup.build(config)` loads and checks the prompt templates, versions them, names the
model, derives the decoding parameters and the decoding schema, and reads the model's special
tokens. `run_judge` builds it once and hands the same object to every stage (prompt rendering,
the judge's model handler, derivation) and to `run.json`, so the prompt a row was judged with and
the version written beside it cannot disagree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from claimdiff.config import ClaimdiffConfig, JudgeConfig
from claimdiff.errors import ConfigError
from claimdiff.judges.backends.base import Decoding
from claimdiff.judges.model_identity import local_model_digest
from claimdiff.judges.prompting.templates import PromptTemplate, load_prompt
from claimdiff.schemas.judge import decoding_schema
from claimdiff.schemas.rows import DecodingParams


def decoding_params(config: JudgeConfig, image_max_side: int | None = None) -> DecodingParams:
    """Every decoding setting that can change an answer: on every row, and in the cache key.

    `image_max_side` is `images.max_side`, the longest side of the image the stage hands over;
    the openai backend re-encodes it smaller still where its own bound is lower.
    """
    dtype: str | None = None
    quality: int | None = None
    if config.backend == "transformers":
        dtype = config.dtype
    elif config.backend == "vllm":
        dtype = config.vllm.dtype
    elif config.backend == "openai":
        quality = config.openai.image_quality
        if image_max_side is not None:
            image_max_side = min(image_max_side, config.openai.image_max_side)
    if config.backend == "labels":
        image_max_side = None  # gold labels do not look at the image
    return DecodingParams(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature,
        retry_temperature=config.retry_temperature, seed=config.seed,
        max_attempts=config.max_attempts, constrained=config.constrained,
        max_differences=config.max_differences, max_string_chars=config.max_string_chars,
        output_format=config.output_format, mode=config.mode,
        verify_granularity=config.verify_granularity if config.mode == "two_pass" else None,
        verify_rule=config.verify_rule if config.mode == "two_pass" else None,
        image_max_side=image_max_side, image_quality=quality, dtype=dtype,
    )


# What a Hugging Face hub id looks like ("org/name" or "name"); anything else is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def loads_weights(config: JudgeConfig) -> bool:
    """Whether this judge loads `judge.model` from here (in-process, or a server it starts)."""
    return config.backend in ("transformers", "vllm") or (
        config.backend == "openai" and config.openai.start_server)


def check_model_source(config: JudgeConfig) -> None:
    """Fail before the pipeline starts when `judge.model` names a local path that is not there.

    Without this, a typo in a path surfaces as a model-loading crash on a worker, minutes later.
    A hub id cannot be checked offline; the backend resolves it (from the local cache).
    """
    model = config.model
    if not loads_weights(config) or model is None or "://" in model:
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


def model_id(config: JudgeConfig) -> str:
    """The model identity written to every row, known without loading the model."""
    return "labels" if config.backend == "labels" else str(config.model)


def judge_schema(config: JudgeConfig) -> dict[str, Any] | None:
    """The JSON schema that constrains first-pass decoding, or None where decoding is free."""
    if not config.constrained or config.output_format != "json":
        return None
    return decoding_schema(
        max_differences=config.max_differences, max_string_chars=config.max_string_chars)


@dataclass(frozen=True)
class JudgeSetup:
    """The run constants of judging. Frozen and picklable: Beam ships it to every worker."""

    config: JudgeConfig
    prompt: PromptTemplate
    verify_prompt: PromptTemplate | None
    holistic_prompt: PromptTemplate | None
    model_id: str
    decoding: DecodingParams
    schema: dict[str, Any] | None
    special_tokens: frozenset[str] = field(default_factory=frozenset)
    # the content digest of a local model folder (`model_identity`); None: named by model_id
    model_digest: str | None = None

    @classmethod
    def build(cls, config: ClaimdiffConfig, *, check_model: bool = True) -> JudgeSetup:
        """The setup of `config`; `ConfigError` for a prompt without the fields of its role, a
        model path that does not exist (`check_model`), and the like."""
        from claimdiff.judges.prompting.special_tokens import special_tokens_of

        judge = config.judge
        if check_model:
            check_model_source(judge)
        prompt = load_prompt(judge.prompt_name).require("reference", "caption")
        verify = (load_prompt(judge.verify_prompt).require("claims")
                  if judge.mode == "two_pass" else None)
        holistic = (load_prompt(judge.holistic_prompt).require("reference", "caption")
                    if any(p.kind == "holistic" for p in config.rewards.presets) else None)
        return cls(
            config=judge, prompt=prompt, verify_prompt=verify, holistic_prompt=holistic,
            model_id=model_id(judge),
            decoding=decoding_params(judge, config.images.max_side),
            schema=judge_schema(judge),
            special_tokens=(special_tokens_of(judge.model) if judge.backend != "labels"
                            else frozenset()),
            model_digest=(local_model_digest(judge.model, loads_weights(judge))
                          if check_model else None),
        )

    @property
    def judge_identity(self) -> str:
        """The judge as cache keys name it: the model's content where it is a local folder
        (moved weights are the same judge, changed weights another), else its name."""
        return self.model_digest or self.model_id

    @property
    def prompt_version(self) -> str:
        """The versions of every prompt an answer depends on (`single_pass@...+verify@...`)."""
        return "+".join(p.version for p in (self.prompt, self.verify_prompt,
                                             self.holistic_prompt) if p is not None)

    @property
    def first_decoding(self) -> Decoding:
        """The sampling parameters of every first attempt (retries vary temperature and seed)."""
        return Decoding(max_new_tokens=self.config.max_new_tokens,
                        temperature=self.config.temperature, seed=self.config.seed)

    def render(self, template: PromptTemplate, **values: str) -> str:
        """A prompt with untrusted values defanged, the model's own special tokens included."""
        return template.render(self.special_tokens, **values)
