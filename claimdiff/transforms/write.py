"""WriteDataset: pydantic rows -> one Parquet dataset folder with deterministic shard names."""

from __future__ import annotations

import apache_beam as beam
from pydantic import BaseModel

from claimdiff.schemas.arrow import arrow_schema, to_record

SHARD_TEMPLATE = "-SSSSS-of-NNNNN"


def dataset_prefix(output: str, name: str) -> str:
    return f"{output.rstrip('/')}/{name}/part"


class WriteDataset(beam.PTransform):
    """Rows of `model` -> `<output>/<name>/part-00000-of-0000N.parquet` (zstd).

    The schema is derived from the model, never inferred from data, so an empty run still writes
    a readable, typed (empty) shard.
    """

    def __init__(self, output: str, name: str, model: type[BaseModel], num_shards: int = 0):
        super().__init__()
        self._prefix = dataset_prefix(output, name)
        self._model = model
        self._num_shards = num_shards

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return (
            rows
            | "ToRecords" >> beam.Map(to_record)
            | "WriteParquet" >> beam.io.WriteToParquet(
                self._prefix,
                schema=arrow_schema(self._model),
                codec="zstd",
                file_name_suffix=".parquet",
                num_shards=self._num_shards,
                shard_name_template=SHARD_TEMPLATE,
            )
        )
