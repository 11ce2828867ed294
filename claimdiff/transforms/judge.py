"""Judge: (image, row) -> validated judge outputs through Beam `RunInference`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from claimdiff import ids
from claimdiff.config import JudgeConfig
from claimdiff.io.images import LoadedImage
from claimdiff.judges.factory import model_id
from claimdiff.judges.handler import (
    JudgeItem,
    JudgeModelHandler,
    JudgeResult,
    decoding_params,
    prompt_version,
)
from claimdiff.judges.prompting import PromptTemplate
from claimdiff.schemas.rows import DecodingParams, InputRow, Stage
from claimdiff.transforms.failures import (
    FAILURES,
    OK,
    Failed,
    StageOutputs,
    bounded,
    row_failed,
)


def prepare(
    pair: tuple[LoadedImage, InputRow],
    prompt: PromptTemplate,
    version: str,
    judge_model: str,
    decoding: DecodingParams,
    special_tokens: frozenset[str] = frozenset(),
) -> JudgeItem:
    image, row = pair
    return JudgeItem(
        row=row,
        image=image,
        prompt=prompt.render(special_tokens, reference=row.reference, caption=row.caption),
        prompt_version=version,
        judge_model=judge_model,
        decoding=decoding,
        cache_key=ids.cache_key(
            image_sha256=image.sha256, reference=row.reference, caption=row.caption,
            judge_model=judge_model, prompt_version=version,
            decoding=decoding.model_dump()),
    )


def _split(result: JudgeResult, run_id: str) -> Iterator[JudgeResult | beam.pvalue.TaggedOutput]:
    if result.ok:
        yield result
        return
    yield beam.pvalue.TaggedOutput(FAILURES, row_failed(
        result.item.row, run_id=run_id, stage=result.stage,
        error_class=result.error_class or "JudgeError", message=result.error or "no answer",
        raw_output=result.raw_output, attempts=result.attempts,
        raw_input=bounded(result.item.prompt), judge_model=result.item.judge_model,
        prompt_version=result.item.prompt_version))


def _batch_failed(dead_letter: tuple[Any, tuple[Any, str, list[str]]], run_id: str) -> list[Failed]:
    """Every request of a batch whose backend call raised gets its own failure row."""
    batch, (exc_type, exc_repr, _traceback) = dead_letter
    error_class = getattr(exc_type, "__name__", str(exc_type))
    return [
        row_failed(item.row, run_id=run_id, stage=Stage.JUDGE, error_class=error_class,
                   message=f"judge backend failed on the whole batch: {exc_repr}",
                   raw_input=bounded(item.prompt), judge_model=item.judge_model,
                   prompt_version=item.prompt_version)
        for item in batch
    ]


class Judge(beam.PTransform):
    """`(LoadedImage, InputRow)` -> `JudgeResult` (ok) and `Failed` (failures, stage judge).

    Requests are batched and sent to the configured backend by `RunInference` with
    `JudgeModelHandler`. An answer that fails validation after every attempt, or a request the
    backend refuses, becomes a failure row with the raw answer and the attempt count; a batch whose
    backend call raises is dead-lettered by Beam and becomes one failure row per request.
    """

    def __init__(self, run_id: str, config: JudgeConfig, prompt: PromptTemplate,
                 image_max_side: int | None = None,
                 special_tokens: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self._run_id = run_id
        self._config = config
        self._prompt = prompt
        self._image_max_side = image_max_side
        self._special_tokens = special_tokens

    def expand(self, pairs: beam.PCollection) -> StageOutputs:
        items = pairs | "Prepare" >> beam.Map(
            prepare, self._prompt, prompt_version(self._config), model_id(self._config),
            decoding_params(self._config, self._image_max_side), self._special_tokens)
        results, dead = items | "RunInference" >> RunInference(
            JudgeModelHandler(self._config, self._special_tokens)).with_exception_handling()
        split = results | "Split" >> beam.FlatMap(_split, self._run_id).with_outputs(
            FAILURES, main=OK)
        batch_failures = dead.failed_inferences | "BatchFailures" >> beam.FlatMap(
            _batch_failed, self._run_id)
        failures = (split[FAILURES], batch_failures) | "Failures" >> beam.Flatten()
        return StageOutputs(split[OK], failures)
