"""ReadManifest: manifest files -> validated `InputRow`s; malformed rows -> failures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from claimdiff.errors import ManifestError, ManifestRowError, RowError
from claimdiff.io.manifest import iter_manifest_lines, manifest_format, validate_row
from claimdiff.schemas.rows import FailureRow, InputRow, Stage
from claimdiff.transforms.failures import FAILURES, OK, Failed, StageOutputs, raw_json

NAMESPACE = "claimdiff.manifest"
ROWS_READ = "rows_read"


Element = tuple[str, int, int, dict[str, Any] | ManifestRowError]


def _read_rows(manifest: str) -> Iterator[Element]:
    """(manifest, row index, physical line or Parquet row number, record or row error)."""
    counter = Metrics.counter(NAMESPACE, ROWS_READ)
    index, line = -1, 0
    try:
        for index, line, record in iter_manifest_lines(manifest):
            counter.inc()
            yield manifest, index, line, record
    except (ManifestError, OSError) as exc:
        # the file changed or the store failed after the pre-flight check: what is left of it
        # is one failed row, not a failed run
        counter.inc()
        yield manifest, index + 1, line + 1, ManifestRowError(
            f"line {line + 1}: the rest of the manifest cannot be read: "
            f"{type(exc).__name__}: {exc}")


class _Validate(beam.DoFn):
    def __init__(self, run_id: str, allowed_schemes: Sequence[str], max_text_chars: int) -> None:
        self._run_id = run_id
        self._allowed = list(allowed_schemes)
        self._max_text_chars = max_text_chars

    def process(self, element: Element) -> Iterator[InputRow | beam.pvalue.TaggedOutput]:
        manifest, index, line, record = element
        where = f"row {line}" if manifest_format(manifest) == "parquet" else f"line {line}"
        try:
            if isinstance(record, ManifestRowError):
                raise record
            row = validate_row(record, manifest=manifest, row_index=index,
                               allowed_schemes=self._allowed, max_text_chars=self._max_text_chars)
        except RowError as exc:
            raw = exc.raw if isinstance(exc, ManifestRowError) and exc.raw else None
            stage = Stage.READ_MANIFEST if record is exc else Stage.VALIDATE
            message = str(exc) if record is exc else f"{where}: {exc}"
            yield self._failed(manifest, index, record, stage, exc, message, raw)
        except Exception as exc:
            # Whatever a hostile row makes a library raise, it stays one failed row.
            yield self._failed(manifest, index, record, Stage.VALIDATE, exc,
                               f"{where}: unexpected error validating the row: {exc}", None)
        else:
            yield row

    def _failed(self, manifest: str, index: int, record: object, stage: Stage,
                exc: Exception, message: str, raw: str | None) -> beam.pvalue.TaggedOutput:
        return beam.pvalue.TaggedOutput(FAILURES, Failed(FailureRow(
            run_id=self._run_id, stage=stage, error_class=type(exc).__name__,
            message=message, manifest=manifest, row_index=index,
            raw_input=raw or raw_json(record if isinstance(record, dict) else None),
        )))


class ReadManifest(beam.PTransform):
    """Pipeline root -> `InputRow` (ok) and `Failed` (failures, stages read_manifest/validate).

    Each manifest file is read by one worker, then rows are spread out for the stages after.
    Every row read is counted in the `claimdiff.manifest/rows_read` counter: the `rows_in` of the
    run's accounting.
    """

    def __init__(self, manifests: Sequence[str], run_id: str, allowed_schemes: Sequence[str],
                 max_text_chars: int):
        super().__init__()
        self._manifests = list(manifests)
        self._run_id = run_id
        self._allowed = list(allowed_schemes)
        self._max_text_chars = max_text_chars

    def expand(self, pbegin: beam.pvalue.PBegin) -> StageOutputs:
        results = (
            pbegin
            | "ManifestFiles" >> beam.Create(self._manifests)
            | "ReadRows" >> beam.FlatMap(_read_rows)
            | "Spread" >> beam.Reshuffle()
            | "Validate" >> beam.ParDo(
                _Validate(self._run_id, self._allowed, self._max_text_chars)).with_outputs(
                FAILURES, main=OK)
        )
        return StageOutputs(results[OK], results[FAILURES])
