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
from typing import Any

from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from claimdiff.config import JudgeConfig
from claimdiff.errors import JudgeOutputError, JudgeRequestError
from claimdiff.io.images import LoadedImage
from claimdiff.judges.base import Decoding, JudgeBackend, JudgeRequest
from claimdiff.judges.factory import build_backend, model_id
from claimdiff.judges.parsing import parser_for
from claimdiff.schemas.judge import JudgeOutput
from claimdiff.schemas.rows import DecodingParams, InputRow

METRICS_NAMESPACE = "claimdiff.judge"


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
    """The answer to one `JudgeItem`: a validated output, or the error and the raw text."""

    item: JudgeItem
    output: JudgeOutput | None
    raw_output: str | None
    attempts: int
    finish_reason: str | None = None
    error_class: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.output is not None


def decoding_of(config: JudgeConfig) -> Decoding:
    return Decoding(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed
    )


def decoding_params(config: JudgeConfig) -> DecodingParams:
    """Every decoding setting that can change an answer: on every row, and in the cache key."""
    return DecodingParams(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature,
        retry_temperature=config.retry_temperature, seed=config.seed,
        max_attempts=config.max_attempts, constrained=config.constrained,
        max_differences=config.max_differences, max_string_chars=config.max_string_chars,
        output_format=config.output_format,
    )


class JudgeModelHandler(ModelHandler[JudgeItem, JudgeResult, JudgeBackend]):
    def __init__(self, config: JudgeConfig) -> None:
        super().__init__()
        self._config = config
        self._counters = {
            "call": Metrics.counter(METRICS_NAMESPACE, "backend_calls"),
            "retry": Metrics.counter(METRICS_NAMESPACE, "retries"),
            "invalid": Metrics.counter(METRICS_NAMESPACE, "invalid_answers"),
            "cut": Metrics.counter(METRICS_NAMESPACE, "answers_cut_at_max_tokens"),
        }
        self._latency_ms = Metrics.distribution(METRICS_NAMESPACE, "backend_call_ms")

    def load_model(self) -> JudgeBackend:
        return build_backend(self._config)

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
        return judge_batch(batch, model, self._config, self._observe)

    def _observe(self, event: str, value: int = 1) -> None:
        if event == "latency_ms":
            self._latency_ms.update(value)
        else:
            self._counters[event].inc(value)


def judge_batch(
    batch: Sequence[JudgeItem],
    backend: JudgeBackend,
    config: JudgeConfig,
    observe: Callable[[str, int], None] | None = None,
) -> list[JudgeResult]:
    """Answer a batch, retrying invalid answers up to `config.max_attempts` tries in all.

    A request-level error from the backend (no gold labels, prompt too long) is final: retrying
    cannot fix it. Only an answer that does not parse or validate is tried again, with
    `retry_temperature` and a different seed.
    """
    def note(event: str, value: int = 1) -> None:
        if observe is not None:
            observe(event, value)

    base = decoding_of(config)
    parse = parser_for(config.output_format)
    requests = [item.request() for item in batch]
    results: dict[int, JudgeResult] = {}
    pending = list(range(len(batch)))
    for attempt in range(1, config.max_attempts + 1):
        decoding = base if attempt == 1 else replace(
            base, temperature=config.retry_temperature, seed=base.seed + attempt - 1)
        if attempt > 1:
            note("retry", len(pending))
        started = time.perf_counter()
        answers = backend.judge([requests[i] for i in pending], decoding)
        note("call")
        note("latency_ms", int((time.perf_counter() - started) * 1000))
        if len(answers) != len(pending):
            raise RuntimeError(
                f"backend {backend.model_id} answered {len(answers)} of {len(pending)} requests")
        still_pending = []
        for index, answer in zip(pending, answers, strict=True):
            item = batch[index]
            if answer.error is not None:
                results[index] = JudgeResult(
                    item, None, answer.text, attempt, answer.finish_reason,
                    JudgeRequestError.__name__, answer.error)
                continue
            try:
                output = parse(answer.text)
            except JudgeOutputError as exc:
                note("invalid")
                message = str(exc)
                if answer.finish_reason == "length":
                    note("cut")
                    message = f"{message} (answer cut at max_new_tokens={base.max_new_tokens})"
                results[index] = JudgeResult(
                    item, None, answer.text, attempt, answer.finish_reason,
                    JudgeOutputError.__name__, message)
                still_pending.append(index)
            else:
                results[index] = JudgeResult(
                    item, output, answer.text, attempt, answer.finish_reason)
        pending = still_pending
        if not pending:
            break
    return [results[i] for i in range(len(batch))]
