"""Judge: (image, row) -> validated judge outputs through Beam `RunInference`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from claimdiff import ids
from claimdiff.io.images import PIXELS_VERSION, ImageRef, LoadedImage
from claimdiff.judges.backends.factory import build_backend
from claimdiff.judges.formats.answer_tags import answer_text
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.model_handler import BackendFactory, JudgeModelHandler
from claimdiff.judges.records import JudgeItem, JudgeResult
from claimdiff.schemas.rows import InputRow, Stage
from claimdiff.transforms.failures import (
    FAILURES,
    OK,
    Failed,
    StageOutputs,
    bounded,
    row_failed,
)


def cache_key(setup: JudgeSetup, image_sha256: str, row: InputRow) -> str:
    """Everything that determines this row's judge answer (`ids.cache_key`)."""
    return ids.cache_key(image_sha256=image_sha256, reference=row.reference, caption=row.caption,
                         judge_model=setup.judge_identity,
                         prompt_version=setup.prompt_version,
                         decoding={**setup.decoding.model_dump(),
                                   "pixels": PIXELS_VERSION},
                         gold=row.gold if setup.config.backend == "labels" else None)


def prepare(pair: tuple[ImageRef, InputRow], setup: JudgeSetup) -> JudgeItem:
    """The judge request of one row. A caption written as `<think>...</think><answer>...</answer>`
    is judged by its answer, as the released code judges it."""
    image, row = pair
    return JudgeItem(
        row=row, image=image,
        prompt=setup.render(setup.prompt, reference=row.reference,
                            caption=answer_text(row.caption)),
        cache_key=cache_key(setup, image.sha256, row))


def _split(result: JudgeResult, run_id: str, setup: JudgeSetup
           ) -> Iterator[JudgeResult | beam.pvalue.TaggedOutput]:
    if result.ok:
        yield result
        return
    yield beam.pvalue.TaggedOutput(FAILURES, row_failed(
        result.item.row, run_id=run_id, stage=result.stage,
        error_class=result.error_class or "JudgeError", message=result.error or "no answer",
        raw_output=result.raw_output, attempts=result.attempts,
        raw_input=bounded(result.item.prompt), judge_model=setup.model_id,
        prompt_version=setup.prompt_version))


def _batch_failed(dead_letter: tuple[Any, tuple[Any, str, list[str]]], run_id: str,
                  setup: JudgeSetup) -> list[Failed]:
    """Every request of a batch whose backend call raised gets its own failure row."""
    batch, (exc_type, exc_repr, _traceback) = dead_letter
    error_class = getattr(exc_type, "__name__", str(exc_type))
    return [
        row_failed(item.row, run_id=run_id, stage=Stage.JUDGE, error_class=error_class,
                   message=f"judge backend failed on the whole batch: {exc_repr}",
                   raw_input=bounded(item.prompt), judge_model=setup.model_id,
                   prompt_version=setup.prompt_version)
        for item in batch
    ]


@beam.typehints.with_input_types(tuple[LoadedImage, InputRow])
class Judge(beam.PTransform):
    """`(LoadedImage, InputRow)` -> `JudgeResult` (ok) and `Failed` (failures, stages judge and
    verify).

    Requests are batched and sent to the configured backend by `RunInference` with
    `JudgeModelHandler`. An answer that fails validation after every attempt, or a request the
    backend refuses, becomes a failure row with the raw answer and the attempt count; a batch
    whose backend call raises is dead-lettered by Beam and becomes one failure row per request.
    """

    def __init__(self, run_id: str, setup: JudgeSetup,
                 backend_factory: BackendFactory = build_backend) -> None:
        super().__init__()
        self._run_id = run_id
        self._setup = setup
        self._factory = backend_factory

    def expand(self, pairs: beam.PCollection) -> StageOutputs:
        items = pairs | "Prepare" >> beam.Map(prepare, self._setup).with_output_types(JudgeItem)
        results, dead = items | "RunInference" >> RunInference(
            JudgeModelHandler(self._setup, self._factory)).with_exception_handling()
        split = results | "Split" >> beam.FlatMap(
            _split, self._run_id, self._setup).with_outputs(FAILURES, main=OK)
        batch_failures = dead.failed_inferences | "BatchFailures" >> beam.FlatMap(
            _batch_failed, self._run_id, self._setup)
        failures = (split[FAILURES], batch_failures) | "Failures" >> beam.Flatten()
        return StageOutputs(split[OK], failures)
