"""`answers/`: every judged answer of a run, by cache key, written as the run goes.

A run's shards appear only when Beam's sinks finalise them at the very end, so a run killed
after hours would otherwise keep nothing. Judged answers are therefore also written here, a
small Parquet file every `run.persist_every` answers per worker, each file whole or absent
(a temporary name renamed over on a local disk; one PUT on an object store). What a kill loses
is bounded: per worker, the answers not yet written (fewer than `run.persist_every`) and the
batches in flight.

The answers are the judge's, not the rewards: reusing one runs the row through `Derive` again,
so a reused row gets this run's outcome table, taxonomy and presets, and is bit-identical to a
row judged now when those are unchanged. Keys are content keys (`ids.cache_key`): a changed
prompt, model, decoding parameter (or, for the labels judge, gold label) is another key, and
is judged afresh. A bundle that Beam retries may write an answer twice; readers keep one per key.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from claimdiff.errors import ConfigError
from claimdiff.io.fs import filesystem, join, write_whole
from claimdiff.judges.records import JudgeItem, JudgeResult
from claimdiff.schemas.judge import JudgeOutput, Judgment
from claimdiff.schemas.rows import SwapCheck

ANSWERS = "answers"
ANSWER_GLOB = "answers-*.parquet"
_SCHEMA = pa.schema([("cache_key", pa.string()), ("answer", pa.string())])


class StoredAnswer(BaseModel):
    """One judged answer, as much of a `JudgeResult` as does not depend on the row."""

    judged_in: str = Field(description="run id of the run whose judge call gave this answer")
    output: JudgeOutput
    raw_output: str | None = None
    attempts: int
    finish_reason: str | None = None
    first_judgments: list[Judgment] | None = None
    verify_disagreements: int = 0
    verify_raw: list[str] | None = None
    swap: SwapCheck | None = None
    holistic_score: int | None = None
    holistic_raw: str | None = None

    @classmethod
    def of(cls, result: JudgeResult, run_id: str) -> StoredAnswer:
        if result.output is None:
            raise ValueError("only answered rows are stored")
        return cls(
            judged_in=result.judged_in or run_id, output=result.output,
            raw_output=result.raw_output, attempts=result.attempts,
            finish_reason=result.finish_reason,
            first_judgments=(list(result.first_judgments)
                             if result.first_judgments is not None else None),
            verify_disagreements=result.verify_disagreements,
            verify_raw=list(result.verify_raw) if result.verify_raw is not None else None,
            swap=result.swap, holistic_score=result.holistic_score,
            holistic_raw=result.holistic_raw)

    def result_for(self, item: JudgeItem) -> JudgeResult:
        return JudgeResult(
            item=item, output=self.output, raw_output=self.raw_output, attempts=self.attempts,
            finish_reason=self.finish_reason,
            first_judgments=(tuple(self.first_judgments)
                             if self.first_judgments is not None else None),
            verify_disagreements=self.verify_disagreements,
            verify_raw=tuple(self.verify_raw) if self.verify_raw is not None else None,
            swap=self.swap, holistic_score=self.holistic_score, holistic_raw=self.holistic_raw,
            judged_in=self.judged_in)


def write_answers(output: str, answers: Sequence[tuple[str, str]]) -> str | None:
    """Write (cache key, answer JSON) pairs as one new file of `output/answers/`; its path."""
    if not answers:
        return None
    table = pa.table({"cache_key": [key for key, _ in answers],
                      "answer": [answer for _, answer in answers]}, schema=_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    fs, root = filesystem(output)
    final = join(root, ANSWERS, f"answers-{uuid.uuid4().hex}.parquet")
    write_whole(fs, final, buffer.getvalue())
    return final


def answer_files(sources: Iterable[str]) -> list[str]:
    """The answer files of earlier runs (run folders), as full URIs; `ConfigError` for a
    source that holds none (not a run folder, or a run from before `answers/`)."""
    found: list[str] = []
    for source in sources:
        fs, root = filesystem(source)
        paths = sorted(fs.glob(join(root, ANSWERS, ANSWER_GLOB)))
        if not paths and not fs.isdir(join(root, ANSWERS)):
            raise ConfigError(f"--reuse {source}: no {ANSWERS}/ there (not a claimdiff run "
                              "folder, or one written before runs kept their answers)")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        found.extend(path if protocol in ("file", "local") else f"{protocol}://{path}"
                     for path in paths)
    return found


def read_answer_file(uri: str) -> Iterator[tuple[str, str]]:
    """The (cache key, answer JSON) pairs of one answer file."""
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as handle:
        table = pq.read_table(handle)
    yield from zip(table.column("cache_key").to_pylist(), table.column("answer").to_pylist(),
                   strict=True)


def read_answers(sources: Iterable[str]) -> dict[str, StoredAnswer]:
    """Every answer of these run folders, one per key (for tools and tests; the pipeline reads
    the files in parallel instead)."""
    answers: dict[str, StoredAnswer] = {}
    for uri in answer_files(sources):
        for key, answer in read_answer_file(uri):
            answers.setdefault(key, StoredAnswer.model_validate_json(answer))
    return answers
