"""WriteDataset: pydantic rows -> one Parquet dataset folder with deterministic shard names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from pydantic import BaseModel

from claimdiff.redaction import Redactor
from claimdiff.schemas.arrow import arrow_schema, to_record

SHARD_TEMPLATE = "-SSSSS-of-NNNNN"


def dataset_prefix(output: str, name: str) -> str:
    return f"{output.rstrip('/')}/{name}/part"


class _ToRedactedRecords(beam.DoFn):
    """Rows -> Arrow-ready records with credentials redacted (`claimdiff.redaction`). The
    secret values come from the worker's environment (named, never carried in the pipeline)."""

    def __init__(self, secret_env: Sequence[str]) -> None:
        self._secret_env = list(secret_env)
        self._redactor = Redactor()

    def setup(self) -> None:
        self._redactor = Redactor.from_env(*self._secret_env)

    def process(self, row: BaseModel) -> Iterator[dict[str, Any]]:
        yield self._redactor.value(to_record(row))


class WriteDataset(beam.PTransform):
    """Rows of `model` -> `<output>/<name>/part-00000-of-0000N.parquet` (zstd).

    The schema is derived from the model, never inferred from data, so an empty run still writes
    a readable, typed (empty) shard. Every string is redacted on the way (URL credentials,
    secret query values, and the values of the environment variables `secret_env`).
    """

    def __init__(self, output: str, name: str, model: type[BaseModel], num_shards: int = 0,
                 secret_env: Sequence[str] = ()) -> None:
        super().__init__()
        self._prefix = dataset_prefix(output, name)
        self._model = model
        self._num_shards = num_shards
        self._secret_env = list(secret_env)

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return (
            rows
            | "ToRecords" >> beam.ParDo(_ToRedactedRecords(self._secret_env))
            | "WriteParquet" >> beam.io.WriteToParquet(
                self._prefix,
                schema=arrow_schema(self._model),
                codec="zstd",
                file_name_suffix=".parquet",
                num_shards=self._num_shards,
                shard_name_template=SHARD_TEMPLATE,
            )
        )
