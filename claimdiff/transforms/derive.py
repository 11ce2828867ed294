"""Derive: judge outputs -> difference rows, statistics and rewards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import apache_beam as beam

from claimdiff.config import ClaimdiffConfig
from claimdiff.errors import JudgeOutputError
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.records import JudgeResult
from claimdiff.rewards.judged import derive_result
from claimdiff.rewards.presets import preset_values
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.rows import RewardRow, RowStatus, Stage
from claimdiff.transforms.failures import FAILURES, row_failed

DIFFERENCES = "differences"
REWARDS = "rewards"


class DeriveOutputs(NamedTuple):
    differences: beam.PCollection
    rewards: beam.PCollection
    failures: beam.PCollection


class _Derive(beam.DoFn):
    def __init__(self, run_id: str, config: ClaimdiffConfig, setup: JudgeSetup) -> None:
        self._run_id = run_id
        self._config = config
        self._setup = setup
        self._mapper: TypeMapper | None = None

    def setup(self) -> None:
        self._mapper = TypeMapper(self._config.taxonomy)

    def process(self, result: JudgeResult) -> Iterator[beam.pvalue.TaggedOutput]:
        assert self._mapper is not None
        item, row = result.item, result.item.row
        setup = self._setup
        try:
            derived = derive_result(result, self._run_id, self._config, setup, self._mapper)
        except (ValueError, KeyError, JudgeOutputError) as exc:
            yield beam.pvalue.TaggedOutput(FAILURES, row_failed(
                row, run_id=self._run_id, stage=Stage.DERIVE, error_class=type(exc).__name__,
                message=str(exc), raw_output=result.raw_output, attempts=result.attempts))
            return
        for difference in derived.differences:
            yield beam.pvalue.TaggedOutput(DIFFERENCES, difference)
        yield beam.pvalue.TaggedOutput(REWARDS, RewardRow(
            run_id=self._run_id, sample_id=row.sample_id, actor_id=row.actor_id,
            manifest=row.manifest, row_index=row.row_index, image=row.image,
            image_uri=row.image_uri, caption=row.caption, reference=row.reference,
            status=RowStatus.OK,
            reward=derived.reward, rewards=derived.rewards,
            preset_values=preset_values(derived.rewards), stats=derived.stats,
            swap=result.swap,
            image_sha256=item.image.sha256,
            judge_model=setup.model_id, prompt_version=setup.prompt_version,
            decoding=setup.decoding, cache_key=item.cache_key,
            judged_in=result.judged_in or self._run_id, raw_answer=result.raw_output,
            verify_answers=list(result.verify_raw) if result.verify_raw is not None else None,
            holistic_answer=result.holistic_raw,
            metadata=row.metadata))


@beam.typehints.with_input_types(JudgeResult)
class Derive(beam.PTransform):
    """`JudgeResult` -> `DifferenceRow`s, one `RewardRow` per row, and `Failed` (stage derive).

    Outcomes follow the outcome table (`rewards.outcomes`); error types are mapped to the
    canonical taxonomy, missing severities come from the keyword rule; rewards are the
    configured presets over the row's statistics. Provenance (judge model, prompt version,
    decoding) comes from the run's `JudgeSetup`.
    """

    def __init__(self, run_id: str, config: ClaimdiffConfig, setup: JudgeSetup) -> None:
        super().__init__()
        self._run_id = run_id
        self._config = config
        self._setup = setup

    def expand(self, results: beam.PCollection) -> DeriveOutputs:
        outputs = results | "DeriveRows" >> beam.ParDo(
            _Derive(self._run_id, self._config, self._setup)).with_outputs(
            DIFFERENCES, REWARDS, FAILURES)
        return DeriveOutputs(outputs[DIFFERENCES], outputs[REWARDS], outputs[FAILURES])
