"""The Beam `ModelHandler` of the judge: batches in, one typed result per request out.

Beam's `RunInference` owns batching, model loading once per worker and the dead letter for whole
batches that raise. This handler owns what Beam cannot know: parsing each answer into the judge
schema, retrying the answers that fail it (bounded), and keeping the raw text of every answer,
so a request that still fails becomes a failure row one can debug.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Generic, TypeVar

from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from claimdiff.config import JudgeConfig
from claimdiff.errors import JudgeOutputError, JudgeRequestError
from claimdiff.io.images import LoadedImage
from claimdiff.judges.base import Decoding, JudgeBackend, JudgeRequest, RawAnswer
from claimdiff.judges.factory import build_backend, model_id
from claimdiff.judges.paper_format import render_paper_text
from claimdiff.judges.parsing import parser_for
from claimdiff.judges.prompting import load_prompt
from claimdiff.judges.swap import compare, mirror, selected
from claimdiff.judges.verification import (
    Claim,
    claims_of,
    combine,
    exempt_differences,
    parse_verification,
    render_claims,
    verdicts_for,
)
from claimdiff.schemas.judge import (
    ClaimVerdict,
    JudgeOutput,
    Judgment,
    VerificationOutput,
    verification_schema,
)
from claimdiff.schemas.rows import DecodingParams, InputRow, Stage, SwapCheck

METRICS_NAMESPACE = "claimdiff.judge"
T = TypeVar("T")


@dataclass(frozen=True)
class JudgeItem:
    """One request of the Judge stage, with the row it answers for."""

    row: InputRow
    image: LoadedImage
    prompt: str
    prompt_version: str
    judge_model: str
    decoding: DecodingParams
    cache_key: str

    def request(self) -> JudgeRequest:
        return JudgeRequest(
            key=self.cache_key, prompt=self.prompt, image=self.image.image, gold=self.row.gold
        )


@dataclass(frozen=True)
class JudgeResult:
    """The answer to one `JudgeItem`: a validated output, or the error and the raw text.

    In two-pass mode `output` holds the final judgments, `first_judgments` the first pass's; a
    swap check is attached where the row was in the position-swap sample.
    """

    item: JudgeItem
    output: JudgeOutput | None
    raw_output: str | None
    attempts: int
    finish_reason: str | None = None
    error_class: str | None = None
    error: str | None = None
    stage: Stage = Stage.JUDGE
    first_judgments: tuple[Judgment, ...] | None = None
    verify_disagreements: int = 0
    verify_raw: tuple[str, ...] | None = None
    swap: SwapCheck | None = None

    @property
    def ok(self) -> bool:
        return self.output is not None


@dataclass(frozen=True)
class Answer(Generic[T]):
    """One request after every attempt: the parsed output, or why there is none."""

    output: T | None
    raw: str | None
    attempts: int
    finish_reason: str | None
    error_class: str | None = None
    error: str | None = None


def decoding_of(config: JudgeConfig) -> Decoding:
    return Decoding(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed
    )


def prompt_version(config: JudgeConfig) -> str:
    """The versions of every prompt an answer depends on (`single_pass@...+verify@...`)."""
    version = load_prompt(config.prompt_name).version
    if config.mode == "two_pass":
        version += "+" + load_prompt(config.verify_prompt).version
    return version


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


# Token counts a backend may report per answer (`RawAnswer.extra`), summed into counters of the
# same name: the run's prefix-cache hit rate is cached_prompt_tokens / prompt_tokens.
TOKEN_COUNTS = ("prompt_tokens", "cached_prompt_tokens", "new_tokens")

# Beam counter names of the events `judge_batch` reports (other events keep their own name).
COUNTERS = {
    "call": "backend_calls",
    "retry": "retries",
    "invalid": "invalid_answers",
    "cut": "answers_cut_at_max_tokens",
    "swap_failure": "swap_failures",
    "swap_row": "swap_rows",
    "verify_request": "verify_requests",
}


class JudgeModelHandler(ModelHandler[JudgeItem, JudgeResult, JudgeBackend]):
    def __init__(self, config: JudgeConfig, special_tokens: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self._config = config
        self._special_tokens = special_tokens
        self._latency_ms = Metrics.distribution(METRICS_NAMESPACE, "backend_call_ms")

    def load_model(self) -> JudgeBackend:
        return build_backend(self._config)

    def share_model_across_processes(self) -> bool:
        # One vLLM engine per machine (per GPU), however many SDK worker processes it runs: the
        # in-process engine, or the local server the openai backend starts (each would take
        # most of the GPU's memory).
        if self._config.backend == "vllm":
            return self._config.vllm.share_across_processes
        return self._config.backend == "openai" and self._config.openai.start_server

    def batch_elements_kwargs(self) -> dict[str, int]:
        return {
            "min_batch_size": self._config.min_batch_size,
            "max_batch_size": self._config.max_batch_size,
        }

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def model_id(self) -> str:
        return model_id(self._config)

    def run_inference(
        self,
        batch: Sequence[JudgeItem],
        model: JudgeBackend,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[JudgeResult]:
        return judge_batch(batch, model, self._config, self._observe, self._special_tokens)

    def _observe(self, event: str, value: int = 1) -> None:
        if event == "latency_ms":
            self._latency_ms.update(value)
        else:
            Metrics.counter(METRICS_NAMESPACE, COUNTERS.get(event, event)).inc(value)


Observe = Callable[[str, int], None]


def answer_all(
    requests: Sequence[JudgeRequest],
    parsers: Sequence[Callable[[str | None], T]],
    backend: JudgeBackend,
    config: JudgeConfig,
    base: Decoding,
    note: Observe,
) -> list[Answer[T]]:
    """Answer requests, retrying invalid answers up to `config.max_attempts` tries in all.

    A request-level error from the backend (no gold labels, prompt too long) is final: retrying
    cannot fix it. So is an answer cut at the token budget, even one that parses: a cut
    plain-text answer can read as complete with its last differences missing, and the budget is
    the backend's to grow (the vllm backend already tried a larger one). Only an answer that
    does not parse or validate is tried again, with `retry_temperature` and a different seed.
    """
    results: dict[int, Answer[T]] = {}
    pending = list(range(len(requests)))
    for attempt in range(1, config.max_attempts + 1):
        if not pending:
            break
        decoding = base if attempt == 1 else replace(
            base, temperature=config.retry_temperature, seed=base.seed + attempt - 1)
        if attempt > 1:
            note("retry", len(pending))
        started = time.perf_counter()
        answers = backend.judge([requests[i] for i in pending], decoding)
        note("call", 1)
        note("latency_ms", int((time.perf_counter() - started) * 1000))
        if len(answers) != len(pending):
            raise RuntimeError(
                f"backend {model_id(config)} answered {len(answers)} of {len(pending)} requests")
        still_pending = []
        for index, answer in zip(pending, answers, strict=True):
            _count_tokens(answer, note)
            if answer.error is not None:
                results[index] = Answer(None, answer.text, attempt, answer.finish_reason,
                                        JudgeRequestError.__name__, answer.error)
                continue
            if answer.finish_reason == "length":
                note("cut", 1)
                budget = answer.extra.get("max_tokens", str(decoding.max_new_tokens))
                results[index] = Answer(
                    None, answer.text, attempt, answer.finish_reason, JudgeOutputError.__name__,
                    f"answer cut at the token budget ({budget} new tokens); "
                    f"judge.max_new_tokens is {decoding.max_new_tokens}")
                continue
            try:
                output = parsers[index](answer.text)
            except JudgeOutputError as exc:
                note("invalid", 1)
                results[index] = Answer(None, answer.text, attempt, answer.finish_reason,
                                        JudgeOutputError.__name__, str(exc))
                still_pending.append(index)
            else:
                results[index] = Answer(output, answer.text, attempt, answer.finish_reason)
        pending = still_pending
    return [results[i] for i in range(len(requests))]


def _count_tokens(answer: RawAnswer, note: Observe) -> None:
    """Token counts a backend reported; a value that is not a whole number is not counted."""
    for key in TOKEN_COUNTS:
        value = answer.extra.get(key)
        if value is not None and value.isascii() and value.isdigit():
            note(key, int(value))


def judge_batch(
    batch: Sequence[JudgeItem],
    backend: JudgeBackend,
    config: JudgeConfig,
    observe: Observe | None = None,
    special_tokens: frozenset[str] = frozenset(),
) -> list[JudgeResult]:
    """First pass for the whole batch; then, where configured, the position-swap check (against
    the first pass) and the verification pass."""
    def note(event: str, value: int) -> None:
        if observe is not None:
            observe(event, value)

    base = decoding_of(config)
    parse = parser_for(config.output_format)
    answers = answer_all([item.request() for item in batch], [parse] * len(batch), backend,
                         config, base, note)
    results = [JudgeResult(item, a.output, a.raw, a.attempts, a.finish_reason, a.error_class,
                           a.error) for item, a in zip(batch, answers, strict=True)]
    if config.swap_fraction > 0:
        results = swap_check(results, backend, config, base, note, special_tokens)
    if config.mode == "two_pass":
        results = verify(results, backend, config, base, note, special_tokens)
    return results


def swap_check(results: list[JudgeResult], backend: JudgeBackend, config: JudgeConfig,
               base: Decoding, note: Observe,
               special_tokens: frozenset[str] = frozenset()) -> list[JudgeResult]:
    """Judge the swap sample again with the captions' roles swapped (see `judges.swap`)."""
    template = load_prompt(config.prompt_name)
    parse = parser_for(config.output_format)
    render = render_paper_text if config.output_format == "paper_text" else (
        lambda output: output.model_dump_json())
    chosen = [i for i, r in enumerate(results)
              if r.output is not None and selected(r.item.cache_key, config.swap_fraction)]
    requests = []
    for i in chosen:
        result = results[i]
        assert result.output is not None
        row = result.item.row
        requests.append(JudgeRequest(
            key=f"{result.item.cache_key}:swap",
            prompt=template.render(special_tokens, reference=row.caption,
                                   caption=row.reference),
            image=result.item.image.image,
            # gold labels answer for the swapped roles too: the mirrored gold
            gold=None if row.gold is None else render(mirror(result.output))))
    answers = answer_all(requests, [parse] * len(requests), backend, config, base, note)
    updated = list(results)
    for i, answer in zip(chosen, answers, strict=True):
        result = results[i]
        if answer.output is None or result.output is None:
            note("swap_failure", 1)
            continue
        check = compare(result.output, mirror(answer.output))
        note("swap_row", 1)
        note("swap_original_differences", check.original_differences)
        note("swap_swapped_differences", check.swapped_differences)
        note("swap_matched", check.matched)
        note("swap_judgment_agreements", check.judgment_agreements)
        updated[i] = replace(result, swap=check)
    return updated


def verify(results: list[JudgeResult], backend: JudgeBackend, config: JudgeConfig,
           base: Decoding, note: Observe,
           special_tokens: frozenset[str] = frozenset()) -> list[JudgeResult]:
    """The verification pass (see `judges.verification`): every enumerated claim decided again.

    A verification answer that still fails after every attempt fails its row (stage `verify`):
    a high-precision run must not pass first-pass judgments off as verified ones.
    """
    template = load_prompt(config.verify_prompt)
    constrained = config.constrained and config.output_format == "json"
    owners: list[int] = []
    claim_sets: list[list[Claim]] = []
    requests: list[JudgeRequest] = []
    exempt: dict[int, set[int]] = {}
    for i, result in enumerate(results):
        if result.output is None:
            continue
        exempt[i] = exempt_differences(result.output, config.verify_exempt_types)
        checked = [d for d in range(len(result.output.differences)) if d not in exempt[i]]
        groups: list[list[int]] = (
            [checked] if config.verify_granularity == "sample" else [[d] for d in checked])
        gold = verdicts_for(result.output) if result.item.row.gold is not None else None
        for group in groups:
            claims = claims_of(result.output, group)
            if not claims:
                continue
            wanted = {c.claim_id for c in claims}
            owners.append(i)
            claim_sets.append(claims)
            requests.append(JudgeRequest(
                key=f"{result.item.cache_key}:verify:{claims[0].claim_id}",
                prompt=template.render(special_tokens,
                                       claims=render_claims(claims, special_tokens)),
                image=result.item.image.image,
                json_schema=verification_schema([c.claim_id for c in claims])
                if constrained else None,
                gold=None if gold is None else VerificationOutput(verdicts=[
                    v for v in gold.verdicts if v.claim_id in wanted]).model_dump_json()))
    parsers = [partial(parse_verification, expected=claims) for claims in claim_sets]
    answers = answer_all(requests, parsers, backend, config, base, note)
    note("verify_request", len(requests))

    verdicts: dict[int, list[ClaimVerdict]] = {}
    raws: dict[int, list[str]] = {}
    failed: dict[int, Answer[VerificationOutput]] = {}
    for owner, answer in zip(owners, answers, strict=True):
        if answer.output is None:
            failed.setdefault(owner, answer)
        else:
            verdicts.setdefault(owner, []).extend(answer.output.verdicts)
            raws.setdefault(owner, []).append(answer.raw or "")
    updated = list(results)
    for i, result in enumerate(results):
        if result.output is None:
            continue
        if i in failed:
            answer = failed[i]
            updated[i] = replace(
                result, output=None, raw_output=answer.raw, attempts=answer.attempts,
                finish_reason=answer.finish_reason, error_class=answer.error_class,
                error=f"verification: {answer.error}", stage=Stage.VERIFY)
            continue
        combined = combine(result.output, verdicts.get(i, []), config.verify_rule, exempt[i])
        note("verify_differences", len(result.output.differences) - len(exempt[i]))
        note("verify_exempt", len(exempt[i]))
        note("verify_disagreements", combined.disagreements)
        updated[i] = replace(result, output=combined.output,
                             first_judgments=combined.first_judgments,
                             verify_disagreements=combined.disagreements,
                             verify_raw=tuple(raws.get(i, ())))
    return updated
