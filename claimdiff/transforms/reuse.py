"""Answers kept as the run goes, answers reused from earlier runs, and the early stop.

- `KnownAnswers`: the (cache key, answer) pairs of earlier runs' `answers/` (`--reuse`, and the
  run's own folder for `--resume`), read in parallel, one file per element.
- `ReuseByKey`: the rows of one image whose key has an answer become that answer's
  `JudgeResult` (no judge call, and the image is not decoded for them); the others go on to
  the judge. `LoadImages` splits them, once it has the image's sha256 and before decoding.
- `PersistAnswers`: every answered row's answer written to `answers/` in small files while the
  run goes (`claimdiff.judges.answers`).
- `EarlyStop`: a worker that has seen `run.early_stop_min_rows` rows with a failure share above
  `run.max_failure_share` stops the run (`EarlyStopError`), instead of sending the rest of the
  corpus through a broken judge. Each worker decides on the rows it saw, so a run on several
  workers stops once any one of them has seen enough.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from pydantic import ValidationError

from claimdiff.errors import EarlyStopError
from claimdiff.io.images import ImageRef
from claimdiff.judges.answers import StoredAnswer, read_answer_file, write_answers
from claimdiff.judges.events import NAMESPACE
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.records import JudgeResult
from claimdiff.redaction import Redactor
from claimdiff.schemas.rows import InputRow
from claimdiff.transforms.judge import prepare

REUSED = "reused"  # counter: rows whose answer came from an earlier run (no judge call)
PERSISTED = "answers_persisted"
TO_JUDGE = "to_judge"
UNREADABLE = "answers_unreadable"  # kept answers that no longer validate: judged again
# What the pipeline's error says when the early stop fired: the runner re-raises a worker's
# exception as text on some runners, so the marker is found in the message.
EARLY_STOP_MARKER = "claimdiff early stop:"


@beam.typehints.with_output_types(tuple[str, str])
class KnownAnswers(beam.PTransform):
    """(cache key, answer JSON), one answer per key (a retried bundle may have written one
    twice), from the `answers/` files of earlier runs."""

    def __init__(self, files: list[str]) -> None:
        super().__init__()
        self._files = files

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        return (pipeline
                | "AnswerFiles" >> beam.Create(self._files)
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.FlatMap(read_answer_file)
                | "OnePerKey" >> beam.CombinePerKey(min))


@dataclass(frozen=True)
class ReuseByKey:
    """Splits the rows of one image into answers reused by cache key and rows left to judge."""

    setup: JudgeSetup

    def split(self, image: ImageRef, rows: Iterable[InputRow], known: Mapping[str, str]
              ) -> tuple[list[JudgeResult], list[InputRow]]:
        reused: list[JudgeResult] = []
        to_judge: list[InputRow] = []
        for row in rows:
            item = prepare((image, row), self.setup)
            stored = self._stored(known.get(item.cache_key))
            if stored is None:
                to_judge.append(row)
            else:
                reused.append(stored.result_for(item))
        return reused, to_judge

    @staticmethod
    def _stored(answer: str | None) -> StoredAnswer | None:
        if answer is None:
            return None
        try:
            return StoredAnswer.model_validate_json(answer)
        except ValidationError:
            # a kept answer is read from storage like any input: one that is no longer an
            # answer (edited, or written by another version) is judged again, never reused
            Metrics.counter(NAMESPACE, UNREADABLE).inc()
            return None


class PersistAnswers(beam.DoFn):
    """Writes each answered row's answer to `output/answers/`, `every` answers per file.

    Raw answers are redacted as every output is (`secret_env`: a judge may echo its key)."""

    def __init__(self, output: str, run_id: str, every: int,
                 secret_env: Sequence[str] = ()) -> None:
        self._output = output
        self._run_id = run_id
        self._every = every
        self._secret_env = tuple(secret_env)
        self._redactor = Redactor()
        self._pending: list[tuple[str, str]] = []
        self._persisted = Metrics.counter(NAMESPACE, PERSISTED)

    def setup(self) -> None:
        self._redactor = Redactor.from_env(*self._secret_env)  # the worker's environment

    def start_bundle(self) -> None:
        self._pending = []

    def process(self, result: JudgeResult) -> Iterator[Any]:
        if result.ok:
            answer = self._redactor.value(StoredAnswer.of(result, self._run_id)
                                          .model_dump(mode="json"))
            self._pending.append((result.item.cache_key, json.dumps(answer)))
            if len(self._pending) >= self._every:
                self._flush()
        return iter(())

    def finish_bundle(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._pending:
            write_answers(self._output, self._pending)
            self._persisted.inc(len(self._pending))
            self._pending = []


class EarlyStop(beam.DoFn):
    """Counts outcomes (True: an answered row, False: a failure row) and stops the run."""

    def __init__(self, min_rows: int, max_share: float) -> None:
        self._min_rows = min_rows
        self._max_share = max_share
        self._seen = 0
        self._failed = 0

    def process(self, ok: bool) -> Iterator[Any]:
        self._seen += 1
        self._failed += not ok
        if self._min_rows and self._seen >= self._min_rows and (
                self._failed / self._seen > self._max_share):
            raise EarlyStopError(
                f"{EARLY_STOP_MARKER} {self._failed} of the first {self._seen} rows failed "
                f"(share {self._failed / self._seen:.3f}, over run.max_failure_share="
                f"{self._max_share}); the answers judged so far are kept: fix the cause and "
                "rerun with --resume")
        return iter(())
