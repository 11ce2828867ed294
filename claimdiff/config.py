"""Run configuration: validated models, loaded from YAML with `yaml.safe_load`.

Every knob a transform uses arrives through these models; nothing reads module globals. Unknown
keys are errors, so a typo in a config file names the field instead of being ignored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from claimdiff.errors import ConfigError
from claimdiff.schemas.rows import CanonicalType


class _Strict(BaseModel):
    """Every configuration model: unknown keys are errors, nothing is coerced (`true` is not a
    number, `"4"` is not a count), numbers are finite, and a section written with nothing in it
    (`judge:` followed only by a comment) is an empty section."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        sections = {name for name, info in cls.model_fields.items()
                    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)}
        return {key: ({} if value is None and key in sections else value)
                for key, value in data.items()}


def _severity_level(value: Any) -> Any:
    """1, 2 or 3 as an integer: `Literal[1, 2, 3]` alone would take `True` and `2.0`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be the integer 1, 2 or 3, not a {type(value).__name__}")
    return value


SeverityLevel = Annotated[Literal[1, 2, 3], BeforeValidator(_severity_level)]


class VllmOptions(_Strict):
    """Engine options of the in-process vLLM backend (`judge.backend: vllm`)."""

    dtype: str = Field(
        default="auto", description="the engine's weight dtype (auto: the checkpoint's own; "
        "float32 gives answers equal to the transformers backend's)")
    max_model_len: int = Field(
        default=8192, ge=64, description="the engine's context, image tokens included; a longer "
        "prompt is a failure row")
    max_num_seqs: int = Field(
        default=64, ge=1, description="requests the engine schedules at once")
    gpu_memory_utilization: float | None = Field(
        default=None, gt=0, le=1, description="share of the GPU's memory the engine takes")
    kv_cache_memory_bytes: int | None = Field(
        default=None, ge=1, description="KV cache size; on CPU set it (else vLLM takes 90% of RAM)")
    tensor_parallel_size: int = Field(
        default=1, ge=1, description="GPUs one engine spans")
    structured_outputs_backend: str = Field(
        default="xgrammar", description="vLLM's grammar engine for JSON-schema decoding "
        "(xgrammar, guidance)")
    disable_any_whitespace: bool = Field(
        default=True, description="no free whitespace in constrained JSON (engine-wide: vLLM "
        "0.32 ignores the per-request flag, and a weak model otherwise pads until max_tokens)")
    limit_mm_per_prompt: dict[str, int] = Field(
        default_factory=lambda: {"image": 1},
        description="media items per prompt the engine allows (claimdiff sends one image)")
    enforce_eager: bool = Field(
        default=False, description="no CUDA graphs / torch.compile: faster start, slower steps")
    max_tokens_retry_factor: float = Field(
        default=2.0, ge=1.0, description="an answer cut at max_new_tokens is retried once with "
        "this many times the budget")
    share_across_processes: bool = Field(
        default=True, description="one engine per machine for all SDK worker processes "
        "(Beam's share_model_across_processes)")


class OpenAIOptions(_Strict):
    """Options of the OpenAI-compatible endpoint backend (`judge.backend: openai`)."""

    base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        description="environment variable holding the API key (required only for server_type "
        "openai on a non-loopback host)")
    server_type: Literal["vllm", "openai"] = Field(
        default="vllm", description="how to ask for structured output: vLLM's extra_body "
        "structured_outputs, or the OpenAI response_format json_schema")
    timeout_s: float = Field(
        default=60.0, gt=0, description="deadline of one whole request (connect, headers, body), "
        "per attempt")
    max_retries: int = Field(
        default=4, ge=0, description="retries of a request after timeouts, connection errors, "
        "408/429/5xx")
    backoff_s: float = Field(
        default=0.5, ge=0, description="first backoff before a retry, doubled each retry")
    max_backoff_s: float = Field(
        default=30.0, gt=0, description="the longest backoff (and Retry-After honoured)")
    max_concurrency: int = Field(
        default=8, ge=1, description="requests in flight at once, per worker")
    image_max_side: int = Field(
        default=1024, ge=16, description="images are re-encoded to this longest side at most")
    image_quality: int = Field(
        default=90, ge=1, le=100, description="JPEG quality of the re-encoded image")
    start_server: bool = Field(
        default=False, description="start a local `vllm serve` of judge.model per worker")
    server_args: list[str] = Field(
        default_factory=list,
        description="extra `vllm serve` arguments (never --api-key: the key goes through "
        "api_key_env)")

    @field_validator("server_args")
    @classmethod
    def _no_api_key(cls, args: list[str]) -> list[str]:
        for arg in args:
            name = arg.split("=", 1)[0].replace("_", "-")
            # argparse (and so vLLM) also takes `--api_key` and prefixes such as `--api-k`
            if name.startswith("--api-k") and "--api-key".startswith(name):
                raise ValueError("must not carry --api-key (it would show in `ps` and in "
                                 "vLLM's log): put the key in the variable api_key_env names")
        return args


# the answer format each built-in prompt asks for (other prompts: any format); the holistic
# prompt asks for a score, not differences: it is not a first-pass prompt
PROMPT_FORMATS: dict[str, str] = {
    "single_pass": "json", "single_pass_paper": "paper_text",
    **{f"paper_v{n}": "paper_text" for n in (1, 2, 4, 5, 6)},
    "paper_hall_vs_miss": "hall_vs_miss", "paper_holistic": "holistic",
}


class JudgeConfig(_Strict):
    backend: Literal["labels", "transformers", "vllm", "openai"] = Field(
        default="labels",
        description="labels: gold differences from the manifest's `gold` column; transformers: a "
        "local Hugging Face image-text-to-text model; vllm: the in-process vLLM engine; openai: "
        "any OpenAI-compatible endpoint (vllm serve, SGLang, a hosted API).",
    )
    model: str | None = Field(default=None, description="model path or hub id")
    vllm: VllmOptions = Field(
        default_factory=VllmOptions, description="the vllm backend's engine options")
    openai: OpenAIOptions = Field(
        default_factory=OpenAIOptions, description="the openai backend's endpoint options")
    output_format: Literal["json", "paper_text", "hall_vs_miss"] = Field(
        default="json",
        description="json: the project's JSON (schema-constrained); paper_text: the plain-text "
        "[DIFFERENCE n] blocks of the ClaimDiff-RL paper's released judge, parsed tolerantly "
        "(prompts single_pass_paper, paper_v1, paper_v2, paper_v4, paper_v5, paper_v6); "
        "hall_vs_miss: the released hall_vs_miss judge's blocks (prompt paper_hall_vs_miss)",
    )
    prompt: str | None = Field(
        default=None,
        description="prompt template name in judges/prompts; default single_pass for json, "
        "single_pass_paper for paper_text, paper_hall_vs_miss for hall_vs_miss",
    )
    mode: Literal["single_pass", "two_pass"] = Field(
        default="single_pass",
        description="two_pass adds a verification call that decides every enumerated claim "
        "again, on its own (README: How the judge decides)",
    )
    verify_granularity: Literal["sample", "difference"] = Field(
        default="sample",
        description="one verification request per sample (all its claims), or per difference "
        "(requests that share the image prefix: suits prefix caching)",
    )
    verify_rule: Literal["agree_or_uncertain", "verifier_wins"] = Field(
        default="agree_or_uncertain",
        description="where the passes disagree: the difference becomes uncertain, or the "
        "verification's judgment wins (unless it is uncertain)",
    )
    verify_prompt: str = Field(default="verify", description="verification prompt template")
    holistic_prompt: str = Field(
        default="paper_holistic",
        description="prompt of the holistic 0-10 judge call, made for every row when a preset "
        "of kind holistic is configured (the baseline the paper compares against)")
    verify_exempt_types: list[str] = Field(
        default_factory=lambda: ["repetit", "repeat"],
        description="word prefixes of error types that are not about the image: one-sided "
        "differences whose claiming side's error type has such a word keep the first judgment "
        "in two-pass mode (a repeated claim is true, only needless)")
    swap_fraction: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="share of rows judged again with the captions' roles swapped, to measure "
        "position bias (diagnostic only: rewards do not change)",
    )
    device: str = Field(
        default="cpu", description="torch device of the transformers backend (cpu, cuda, cuda:1, "
        "auto)")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        default="float32", description="weight dtype of the transformers backend")
    trust_remote_code: bool = Field(default=False, description="run code shipped with the model")
    constrained: bool = Field(default=True, description="JSON-schema-constrained decoding")
    max_new_tokens: int = Field(
        default=1024, ge=1, description="token budget of one answer; an answer cut at it is a "
        "failure row, never taken")
    temperature: float = Field(
        default=0.0, ge=0.0, description="sampling temperature of first attempts (0: greedy)")
    retry_temperature: float = Field(
        default=0.3, ge=0.0,
        description="temperature of attempts after an unparsable answer (seeded: reruns give "
        "the same answers); at 0 a retry would repeat the greedy answer it retries")
    seed: int = Field(default=0, description="sampling seed (reruns give the same answers)")
    max_attempts: int = Field(
        default=2, ge=1, le=10, description="tries per request, the first included"
    )
    min_batch_size: int | None = Field(
        default=None, ge=1,
        description="smallest batch Beam forms for the judge; null: max_batch_size (whole "
        "batches from the first; a smaller size is where Beam's adaptive batching starts)")
    max_batch_size: int = Field(
        default=8, ge=1, description="largest batch Beam forms for the judge (one backend call)")
    max_differences: int = Field(default=32, ge=1, le=64, description="decoding bound on the list")
    max_string_chars: int | None = Field(
        default=None, ge=1, description="decoding bound on every string (small models ramble)"
    )

    @model_validator(mode="after")
    def _check(self) -> JudgeConfig:
        if self.backend != "labels" and not self.model:
            raise ValueError(f"judge.model is required with judge.backend={self.backend}")
        if (self.backend == "openai" and not self.openai.start_server
                and not self.openai.base_url):
            raise ValueError("judge.openai.base_url is required unless judge.openai.start_server")
        if self.output_format != "json" and self.constrained and self.backend != "labels":
            raise ValueError(f"judge.output_format={self.output_format} needs "
                             "judge.constrained=false (the JSON schema cannot constrain plain "
                             "text)")
        if self.swap_fraction > 0 and self.output_format == "hall_vs_miss":
            raise ValueError("judge.swap_fraction needs an output format whose answers can be "
                             "mirrored (json or paper_text), not hall_vs_miss")
        if self.min_batch_size is not None and self.min_batch_size > self.max_batch_size:
            raise ValueError("judge.min_batch_size must not exceed judge.max_batch_size")
        wanted = PROMPT_FORMATS.get(self.prompt_name)
        if wanted is not None and wanted != self.output_format:
            raise ValueError(f"judge.prompt {self.prompt_name} asks for the {wanted} answer "
                             f"format, but judge.output_format is {self.output_format}")
        return self


    @property
    def prompt_name(self) -> str:
        if self.prompt is not None:
            return self.prompt
        return {"paper_text": "single_pass_paper",
                "hall_vs_miss": "paper_hall_vs_miss"}.get(self.output_format, "single_pass")


class ImageConfig(_Strict):
    max_bytes: int = Field(default=50 * 2**20, ge=1, description="largest image file read")
    max_decode_pixels: int = Field(
        default=64_000_000, ge=1, description="larger images are decompression bombs: failures"
    )
    max_side: int = Field(default=1024, ge=16, description="longest side sent to the judge")
    allowed_schemes: list[str] = Field(
        default_factory=lambda: ["file", "memory", "s3", "gs", "gcs", "az", "abfs"],
        description="URI schemes images and manifests may use; add http/https explicitly",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="hosts, addresses or networks (CIDR) that http(s) images may come from "
        "although they are loopback, private, link-local or otherwise not public (refused "
        "by default; README: Failure handling)")
    fetch_timeout_s: float = Field(
        default=30.0, gt=0, description="the whole fetch of one image, connect to last byte")
    max_redirects: int = Field(
        default=5, ge=0, le=20, description="redirects an http(s) image fetch follows (each hop is "
        "checked against the host policy)")


class ManifestConfig(_Strict):
    max_text_chars: int = Field(
        default=50_000, ge=1,
        description="longest reference or caption accepted; a longer one is a failure row (a "
        "runaway caption must not fail the judge batch it lands in)")


def _pairs(value: Any) -> Any:
    """YAML has no tuples: `[[count, 3], ...]` is a list of lists."""
    if isinstance(value, list):
        return [tuple(item) if isinstance(item, list) else item for item in value]
    return value


def _level_keys(value: Any) -> Any:
    """Severity keys as written in JSON (`run.json`), where every key is text: "1" is 1."""
    if isinstance(value, dict):
        return {int(key) if isinstance(key, str) and key in ("1", "2", "3") else key: weight
                for key, weight in value.items()}
    return value


# Severity keyword rules, by rule set. `claimdiff`: a keyword matches a word of the label that
# starts with it (`count` matches `counting`, not `account`; `tone` does not match `stone`),
# also after a `mis`/`non` prefix (`miscount`, `nonexistent`). `paper`: the released code's rule,
# a keyword anywhere in the lower-cased label, in this order, else 2.
CLAIMDIFF_SEVERITY_RULES: list[tuple[str, int]] = [
    ("hallucinat", 3), ("fabricat", 3), ("exist", 3), ("count", 3),
    ("number", 3), ("numer", 3), ("quantit", 3), ("identi", 3), ("relation", 3), ("spatial", 3),
    ("object", 3), ("entity", 3), ("entities", 3),
    ("style", 1), ("stylis", 1), ("tone", 1), ("tonal", 1), ("aesthetic", 1), ("subjectiv", 1),
    ("peripher", 1), ("repetit", 1), ("redundan", 1), ("wording", 1), ("fluency", 1),
]
PAPER_SEVERITY_RULES: list[tuple[str, int]] = [
    ("hallucination", 3), ("mismatch", 3), ("incorrect", 3), ("wrong", 3), ("nonexistent", 3),
    ("fabricated", 3), ("overreach", 3),
    ("omission", 2), ("missing", 2), ("truncation", 2), ("incomplete", 2), ("partial", 2),
    ("error", 2),
    ("style", 1), ("aesthetic", 1), ("misinterpretation", 1), ("subjective", 1),
]
_RULE_SETS: dict[str, tuple[list[tuple[str, int]], str]] = {
    "claimdiff": (CLAIMDIFF_SEVERITY_RULES, "word_prefix"),
    "paper": (PAPER_SEVERITY_RULES, "substring"),
}


class SeverityConfig(_Strict):
    weights: Annotated[dict[int, float], BeforeValidator(_level_keys)] = Field(
        default_factory=lambda: {1: 1.0, 2: 1.25, 3: 1.6},
        description="weight of an error of severity 1, 2, 3, each positive (the released "
        "code's defaults)")
    rule_set: Literal["claimdiff", "paper"] = Field(
        default="claimdiff",
        description="built-in keyword rules for a missing severity: claimdiff (word prefixes; "
        "README: How a difference is scored) or paper (the released code's "
        "infer_severity_3_from_error_type: substrings, hallucination/mismatch/... 3, "
        "omission/missing/.../error 2, style/aesthetic/misinterpretation/subjective 1, else 2)")
    keyword_rules: Annotated[list[tuple[str, int]] | None, BeforeValidator(_pairs)] = Field(
        default=None,
        description="(keyword, severity) pairs replacing the rule set's; the first that matches "
        "the error type decides a missing severity")
    keyword_match: Literal["word_prefix", "substring"] | None = Field(
        default=None,
        description="how a keyword matches: a word of the label starting with it, or anywhere "
        "in the label; default: the rule set's (claimdiff word_prefix, paper substring)")
    default: SeverityLevel = Field(default=2, description="severity no keyword decides")
    judge_severity: bool = Field(
        default=True,
        description="the judge's own severity (1-3) wins where it gave one; false: the keyword "
        "rule decides every severity, as the released code does unless "
        "USE_MODEL_JUDGE_SEVERITY is set")

    @property
    def rules(self) -> list[tuple[str, int]]:
        return self.keyword_rules if self.keyword_rules is not None else _RULE_SETS[
            self.rule_set][0]

    @property
    def match(self) -> str:
        return self.keyword_match or _RULE_SETS[self.rule_set][1]

    @property
    def max_weight(self) -> float:
        return max(self.weights.values())

    @model_validator(mode="after")
    def _check(self) -> SeverityConfig:
        if sorted(self.weights) != [1, 2, 3]:
            raise ValueError("severity.weights needs exactly the keys 1, 2 and 3")
        if any(not weight > 0 for weight in self.weights.values()):
            raise ValueError("severity.weights must all be positive")
        if any(sev not in (1, 2, 3) for _, sev in self.rules):
            raise ValueError("severity.keyword_rules severities must be 1, 2 or 3")
        if any(not keyword.strip() for keyword, _ in self.rules):
            raise ValueError("severity.keyword_rules keywords must not be empty")
        return self


class TaxonomyConfig(_Strict):
    # the values are enum names, written as text: the enum alone reads them from strings
    synonyms: dict[str, Annotated[CanonicalType, Strict(False)]] = Field(
        default_factory=dict,
        description="extra label -> canonical type entries; they take precedence over built-ins",
    )


class _Preset(_Strict):
    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$", description="the preset's "
        "name: its column in `rewards/` (`preset_values.<name>`) and its entry in `rewards`")
    version: int = Field(default=1, ge=1, description="bump it when the parameters change")
    severity_weighted: bool = Field(
        default=True, description="severity-weighted error counts instead of plain counts")
    counting: Literal["outcomes", "labels"] = Field(
        default="outcomes",
        description="outcomes: errors follow from which claims exist and the judgment "
        "(claimdiff); labels: a side errs where the judge labelled an error type that is not "
        "none, and every block the judge listed is a difference (the released code)")


class RelativePreset(_Preset):
    """0.5 + 0.5 * (reference errors - actor errors) / differences, in [0, 1]."""

    kind: Literal["relative"] = Field(
        default="relative", description="the formula (README: How a difference is scored)")


class ActorOnlyPreset(_Preset):
    """Only the actor's errors: smooth decay in the error share, count penalty, richness bonus."""

    kind: Literal["actor_only"] = Field(
        default="actor_only", description="the formula (README: How a difference is scored)")
    decay: float = Field(default=2.0, gt=0, description="exp(-decay x the error share)")
    count_penalty: float = Field(default=0.2, ge=0,
                                 description="most taken off for many errors")
    count_scale: float = Field(default=4.0, gt=0,
                               description="errors at which the penalty reaches 63%")
    richness_bonus: float = Field(default=0.05, ge=0,
                                  description="most added for many real differences")
    richness_cap: int = Field(default=8, ge=1,
                              description="differences at which the bonus is full")


class TradeoffPreset(_Preset):
    """exp(-(lam * hallucination + (1 - lam) * omission) / scale); lam=1: hallucinations only.

    Not normalised by length: `lambda` is the form that compares captions of different length.
    """

    kind: Literal["tradeoff"] = Field(
        default="tradeoff", description="the formula (README: How a difference is scored)")
    lam: float = Field(default=0.5, ge=0.0, le=1.0,
                       description="weight of hallucinations; 1 - lam weighs omissions")
    scale: float = Field(default=2.0, gt=0, description="cost at which the value is 1/e")


class LambdaPreset(_Preset):
    """The operating point lam between hallucination and omission, per `per_words` words.

    cost = lam * h + (1 - lam) * o - extra_credit * e, with h the (severity-weighted)
    hallucinations and e the correct extra details per `per_words` words of the actor caption,
    o the omissions per `per_words` words of the reference; value = exp(-cost / scale).
    """

    kind: Literal["lambda"] = Field(
        default="lambda", description="the formula (README: How a difference is scored)")
    lam: float = Field(
        default=0.5, ge=0.0, le=1.0, description="1: only hallucinations count; 0: only omissions")
    scale: float = Field(default=5.0, gt=0, description="cost at which the value is 1/e")
    extra_credit: float = Field(
        default=0.0, ge=0.0, description="credit per correct extra detail (per `per_words` "
        "words), taken off the cost; above 0 a value can exceed 1")
    per_words: int = Field(default=100, ge=1, description="length unit of the rates")


class _Released(_Preset):
    """The released code's common knobs: reward scale, [min, max] mapping, ambiguity penalty
    and format reward. Its default is unweighted counts (USE_SEVERITY_WEIGHTED_REWARD=false)."""

    severity_weighted: bool = Field(
        default=False, description="severity-weighted error counts (the released code's "
        "USE_SEVERITY_WEIGHTED_REWARD; off by default there and here)")
    reward_scale: float = Field(
        default=1.0, ge=0.0, description="REWARD_SCALE: the [0, 1] reward is multiplied by it, "
        "then clipped to [0, 1]")
    min_reward: float = Field(default=0.0, description="MIN_REWARD: [0, 1] maps to [min, max]")
    max_reward: float = Field(default=1.0, description="MAX_REWARD")
    ambiguity_penalty: bool = Field(
        default=False, description="USE_AMBIGUITY_PENALTY: multiply by exp(-decay * max(0, "
        "ambiguity tokens - free tokens)), ambiguity tokens by `rewards.ambiguity`")
    ambiguity_decay: float = Field(default=0.1, ge=0.0, description="AMBIGUITY_DECAY")
    ambiguity_free_words_per_token: float = Field(
        default=90.0, gt=0.0, description="AMBIGUITY_FREE_WORDS_PER_TOKEN: free tokens = "
        "caption words / this")
    ambiguity_free: float | None = Field(
        default=None, ge=0.0, description="AMBIGUITY_FREE: a fixed number of free tokens "
        "instead")
    format_ratio: float = Field(
        default=0.0, ge=0.0, description="the server's fmt_ratio: value = (accuracy + "
        "format_ratio * format) / (1 + format_ratio), format 1 where the caption is well formed")
    require_think_block: bool = Field(
        default=False, description="REQUIRE_THINK_BLOCK: well formed = <think> and <answer> "
        "blocks; else any non-empty answer text")

    @model_validator(mode="after")
    def _check_range(self) -> _Released:
        if self.min_reward > self.max_reward:
            raise ValueError(f"preset {self.name}: min_reward must not exceed max_reward")
        return self


class NormalizedDiffPreset(_Released):
    """The released default mode: 0.5 - 0.5 * (A - B) / D (weighted: / (max weight * D))."""

    kind: Literal["normalized_diff"] = Field(
        default="normalized_diff", description="the formula (README: How a difference is scored)")


class RawDiffPreset(_Released):
    """0.5 - 0.5 * clip(A - B, +-max_error_diff) / max_error_diff."""

    kind: Literal["raw_diff"] = Field(
        default="raw_diff", description="the formula (README: How a difference is scored)")
    max_error_diff: float = Field(default=10.0, gt=0.0, description="MAX_ERROR_DIFF")


class AOnlyPreset(_Released):
    """1 - clip(A, 0, M) / M, M = max_error_diff (weighted: times the largest weight)."""

    kind: Literal["a_only"] = Field(
        default="a_only", description="the formula (README: How a difference is scored)")
    max_error_diff: float = Field(default=10.0, gt=0.0, description="MAX_ERROR_DIFF")


class NormalizedAOnlyPreset(_Released):
    """The released actor-only reward: (eps + (1 - eps) (1 - A/D)^alpha) exp(-A/k)
    (0.7 + 0.3 min(1, log(1 + D) / log(1 + D_max))); 1 when nothing differs."""

    kind: Literal["normalized_a_only"] = Field(
        default="normalized_a_only", description="the formula (README: How a difference is scored)")
    alpha: float = Field(default=2.0, gt=0.0, description="the released ALPHA: exponent of 1 - A/D")
    epsilon: float = Field(default=0.05, ge=0.0, le=1.0,
                           description="the released EPSILON: the floor of the decay")
    k: float = Field(default=4.0, gt=0.0, description="the released K: scale of exp(-A / k)")
    d_max: int = Field(default=10, ge=1, description="D_max: differences of a full bonus")


class JudgmentBasedPreset(_Released):
    """0.5 + 0.5 * ((A wins - B wins) / D +- overall_contribution for the overall verdict)."""

    kind: Literal["judgment_based"] = Field(
        default="judgment_based", description="the formula (README: How a difference is scored)")
    overall_contribution: float = Field(
        default=0.1, ge=0.0, le=1.0, description="share of the reward the overall verdict "
        "decides")


class HallVsMissPreset(_Released):
    """1 - (hallucinations + missing facts) / differences, the ambiguity penalty before the
    scale (as released)."""

    kind: Literal["hall_vs_miss"] = Field(
        default="hall_vs_miss", description="the formula (README: How a difference is scored)")

    @model_validator(mode="after")
    def _counts_only(self) -> HallVsMissPreset:
        if self.severity_weighted:
            raise ValueError(f"preset {self.name}: hall_vs_miss counts hallucinations and "
                             "missing facts, unweighted (severity_weighted must be false)")
        return self


class HolisticPreset(_Preset):
    """The holistic baseline: the judge's 0-10 score of the whole caption / 10, mapped to
    [min_reward, max_reward]; null where the row has no holistic score. Counting and severity
    weighting do not apply."""

    kind: Literal["holistic"] = Field(
        default="holistic", description="the formula (README: How a difference is scored)")
    min_reward: float = Field(default=0.0, description="MIN_REWARD")
    max_reward: float = Field(default=1.0, description="MAX_REWARD")
    format_ratio: float = Field(default=0.0, ge=0.0, description="as for the released modes")
    require_think_block: bool = Field(
        default=False, description="as for the released modes: no reward without "
        "<think>...</think>")

    @model_validator(mode="after")
    def _check_range(self) -> HolisticPreset:
        if self.min_reward > self.max_reward:
            raise ValueError(f"preset {self.name}: min_reward must not exceed max_reward")
        return self


Preset = Annotated[
    RelativePreset | ActorOnlyPreset | TradeoffPreset | LambdaPreset | NormalizedDiffPreset
    | RawDiffPreset | AOnlyPreset | NormalizedAOnlyPreset | JudgmentBasedPreset
    | HallVsMissPreset | HolisticPreset,
    Field(discriminator="kind"),
]
RELEASED_KINDS = ("normalized_diff", "normalized_a_only", "a_only", "raw_diff",
                  "judgment_based", "hall_vs_miss")


def _default_presets() -> list[Preset]:
    return [RelativePreset(name="relative"), ActorOnlyPreset(name="actor_only"),
            LambdaPreset(name="lambda_0.5", lam=0.5)]


class AmbiguityConfig(_Strict):
    """The released code's ambiguity tokens: these words and phrases as whole words, and (with
    `slash_pairs`) any `word/word` such as `red/orange`; counted on the caption's answer text."""

    words: list[str] = Field(
        default_factory=lambda: ["or", "and/or", "possibly", "appears to", "might be",
                                 "could be", "likely"],
        description="tried in this order at each position (case-insensitive)")
    slash_pairs: bool = Field(default=True,
                              description="count any word/word (red/orange) as one hedge")


class RewardsConfig(_Strict):
    presets: list[Preset] = Field(
        default_factory=_default_presets, description="the rewards computed for every judged row")
    primary: str = Field(default="relative", description="preset written to the `reward` column")
    hedges: list[str] = Field(
        default_factory=lambda: [
            "possibly", "perhaps", "maybe", "might be", "may be", "appears to be", "seems to",
            "likely", "probably", "or possibly", "it is unclear",
        ],
        description="hedging phrases counted in `stats.actor_hedges` (diagnostic)",
    )
    ambiguity: AmbiguityConfig = Field(
        default_factory=AmbiguityConfig, description="how hedging is counted (the released code's "
        "ambiguity penalty)")

    @model_validator(mode="after")
    def _check(self) -> RewardsConfig:
        names = [p.name for p in self.presets]
        if len(names) != len(set(names)):
            raise ValueError(f"rewards.presets names must be unique: {names}")
        if self.primary not in names:
            raise ValueError(f"rewards.primary {self.primary!r} is not one of {names}")
        return self


class RunConfig(_Strict):
    max_failure_share: float = Field(
        default=0.1, ge=0.0, le=1.0, description="the run exits non-zero above this failure share"
    )
    num_shards: int = Field(default=0, ge=0, description="shards per dataset; 0: runner decides")
    persist_every: int = Field(
        default=32, ge=1, description="judged answers a worker keeps before writing them to "
        "`answers/`: at most this many (plus the batches in flight) are lost when a run is "
        "killed, and judged again by `--resume`")
    early_stop_min_rows: int = Field(
        default=1000, ge=0, description="stop the run early (exit 7) once a worker has seen "
        "this many rows and its failure share is above max_failure_share; 0 never stops early")


class ServeConfig(_Strict):
    """`claimdiff serve` and the in-process reward functions (README: Rewards during RL)."""

    host: str = Field(default="127.0.0.1", min_length=1,
                      description="address the reward server listens on (loopback by default)")
    port: int = Field(default=8000, ge=0, le=65535, description="port; 0 picks a free one")
    max_batch: int = Field(default=32, ge=1, description="requests judged in one backend batch")
    max_wait_ms: float = Field(
        default=20.0, ge=0.0, le=10_000.0, description="how long a batch waits for more "
        "requests once the first has arrived")
    max_pending: int = Field(
        default=1024, ge=1, description="requests queued or being judged; more are refused "
        "with 503 busy (the released client retries)")
    request_timeout_s: float = Field(
        default=900.0, gt=0.0, description="a request not scored within this is answered 504")
    cache_size: int = Field(
        default=8192, ge=0, description="scores kept by cache key, so a repeated (image, "
        "reference, caption) is judged once; 0 keeps none")
    max_body_bytes: int = Field(default=4 * 2**20, ge=1024,
                                description="largest request body read")
    image_roots: list[str] = Field(
        default_factory=list, description="local folders a request's image_path may point "
        "into (resolved, links followed); local paths are refused when empty; remote URIs "
        "follow images.allowed_schemes and the host policy")
    token_env: str | None = Field(
        default=None, description="environment variable holding a shared secret; when set, "
        "requests need `Authorization: Bearer <secret>` (set it when serving beyond loopback)")
    verifier_presets: dict[str, str] = Field(
        default_factory=lambda: {"gemini_caption_diff": "", "claimdiff": ""},
        description="reward_verifier names a request may send -> the preset they score with "
        "(empty: rewards.primary); any configured preset's own name is accepted too")


class ClaimdiffConfig(_Strict):
    judge: JudgeConfig = Field(
        default_factory=JudgeConfig, description="which judge, and how it decides")
    manifest: ManifestConfig = Field(
        default_factory=ManifestConfig, description="bounds on manifest rows")
    images: ImageConfig = Field(
        default_factory=ImageConfig, description="how images are fetched, bounded and decoded")
    severity: SeverityConfig = Field(
        default_factory=SeverityConfig, description="severity weights and the keyword rule")
    taxonomy: TaxonomyConfig = Field(
        default_factory=TaxonomyConfig, description="open-vocabulary types -> canonical types")
    rewards: RewardsConfig = Field(
        default_factory=RewardsConfig, description="reward presets and hedging phrases")
    run: RunConfig = Field(
        default_factory=RunConfig, description="thresholds and sharding of the run")
    serve: ServeConfig = Field(
        default_factory=ServeConfig, description="the reward server and reward functions")

    @model_validator(mode="after")
    def _check_serve(self) -> ClaimdiffConfig:
        names = {p.name for p in self.rewards.presets}
        unknown = sorted(v for v in self.serve.verifier_presets.values() if v and v not in names)
        if unknown:
            raise ValueError(f"serve.verifier_presets names presets that are not configured: "
                             f"{unknown} (configured: {sorted(names)})")
        return self

    def sha256(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _model_at(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The configuration model that holds the key at `path` (for "did you mean" hints)."""
    model: type[BaseModel] = ClaimdiffConfig
    for part in path:
        info = model.model_fields.get(str(part))
        annotation = info.annotation if info is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def describe_config_errors(exc: ValidationError, limit: int = 5) -> str:
    """Where and why a configuration does not validate, one clause per problem, without the
    values typed (a URL with a password in it must not be echoed) and without pydantic's URLs."""
    import difflib

    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        where = ".".join(str(part) for part in loc) or "<top level>"
        if error["type"] == "extra_forbidden":
            holder = _model_at(loc[:-1])
            known = list(holder.model_fields) if holder is not None else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=2)
            parent = ".".join(str(part) for part in loc[:-1])
            names = " or ".join(f"{parent + '.' if parent else ''}{name}" for name in close)
            hint = f" (did you mean {names}?)" if close else (
                f" (known: {', '.join(known)})" if known else "")
            problems.append(f"unknown key {where}{hint}")
        else:
            problems.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def load_config(text: str | None, overrides: dict[str, Any] | None = None, *,
                source: str = "--config") -> ClaimdiffConfig:
    """Validate YAML text (bounded safe loader) plus dotted overrides such as `judge.model`."""
    from claimdiff.safe_yaml import load_yaml

    data = load_yaml(text, what=source) if text else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a YAML mapping at the top level")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {dotted}: {'.'.join(parents[:depth + 1])} is not a "
                                  "section")
            node = child
        node[leaf] = value
    try:
        return ClaimdiffConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {describe_config_errors(exc)}") from exc
