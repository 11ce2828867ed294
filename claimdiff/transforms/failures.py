"""Failure records: every row a stage cannot process leaves it as one of these."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam

from claimdiff.schemas.rows import FailureRow, InputRow, RewardRow, RowStatus, Stage

OK = "ok"
FAILURES = "failures"
MAX_RAW_CHARS = 20_000  # raw text kept on a failure row; enough to debug, bounded for Parquet


class StageOutputs(NamedTuple):
    """What a stage returns: the rows that go on, and the rows that failed in it."""

    ok: beam.PCollection
    failures: beam.PCollection


@dataclass(frozen=True)
class Failed:
    """A failure row, with the validated input row where the failure happened after validation."""

    failure: FailureRow
    row: InputRow | None = None


def bounded(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_RAW_CHARS:
        return text
    return text[:MAX_RAW_CHARS] + f"... [{len(text) - MAX_RAW_CHARS} more chars]"


def raw_json(value: Any) -> str:
    return bounded(json.dumps(value, sort_keys=True, default=str)) or ""


def row_failed(
    row: InputRow,
    *,
    run_id: str,
    stage: Stage,
    error_class: str,
    message: str,
    raw_output: str | None = None,
    attempts: int | None = None,
    raw_input: str | None = None,
    judge_model: str | None = None,
    prompt_version: str | None = None,
) -> Failed:
    return Failed(
        FailureRow(
            run_id=run_id, stage=stage, error_class=error_class, message=message,
            manifest=row.manifest, row_index=row.row_index, sample_id=row.sample_id,
            actor_id=row.actor_id, image_uri=row.image_uri,
            raw_input=raw_input if raw_input is not None else raw_json(row.model_dump()),
            raw_output=bounded(raw_output), attempts=attempts,
            judge_model=judge_model, prompt_version=prompt_version,
        ),
        row,
    )


def null_reward(failed: Failed) -> list[RewardRow]:
    """The `rewards/` row of a validated row that failed later: null reward, with the reason.

    A 0 would read as "worst caption" and poison training; null says "not judged".
    """
    row = failed.row
    if row is None:
        return []
    return [RewardRow(
        run_id=failed.failure.run_id, sample_id=row.sample_id, actor_id=row.actor_id,
        manifest=row.manifest, row_index=row.row_index, image=row.image,
        image_uri=row.image_uri, caption=row.caption, reference=row.reference,
        status=RowStatus.FAILED,
        failure_stage=failed.failure.stage,
        failure_reason=f"{failed.failure.error_class}: {failed.failure.message}",
        metadata=row.metadata,
    )]
