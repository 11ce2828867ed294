"""Reading a run's Parquet datasets back (`differences/`, `rewards/`, `failures/`), via fsspec.

One reader for everything that reads outputs (the accounting check, `show`, `eval`), on any
fsspec URL the outputs were written to (local, gs:// with `claimdiff[gcp]`, s3:// with
`claimdiff[aws]`, memory:// in tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from claimdiff.schemas.arrow import from_table

ModelT = TypeVar("ModelT", bound=BaseModel)
SHARD_GLOB = "part-*.parquet"


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(uri)
    return fs, root


def shards(output: str, dataset: str) -> list[str]:
    """The shard paths of one dataset, sorted (paths of the output's filesystem)."""
    fs, root = filesystem(output)
    return sorted(fs.glob(join(root, dataset, SHARD_GLOB)))


def has_dataset(output: str, dataset: str) -> bool:
    fs, root = filesystem(output)
    return bool(fs.isdir(join(root, dataset)))


def read_columns(output: str, dataset: str, columns: Sequence[str]) -> dict[str, list[Any]]:
    """Columns of every shard, concatenated in shard order."""
    fs, _ = filesystem(output)
    values: dict[str, list[Any]] = {c: [] for c in columns}
    for path in shards(output, dataset):
        with fs.open(path, "rb") as handle:
            table = pq.ParquetFile(handle).read(columns=list(columns))
        for column in columns:
            values[column].extend(table.column(column).to_pylist())
    return values


def num_rows(output: str, dataset: str) -> int:
    fs, _ = filesystem(output)
    total = 0
    for path in shards(output, dataset):
        with fs.open(path, "rb") as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


def read_rows(output: str, dataset: str, model: type[ModelT]) -> list[ModelT]:
    """Every row of one dataset as validated models."""
    fs, _ = filesystem(output)
    rows: list[ModelT] = []
    for path in shards(output, dataset):
        with fs.open(path, "rb") as handle:
            rows.extend(from_table(pq.read_table(handle), model))
    return rows


def shard_schema(output: str, path: str) -> pa.Schema:
    """The Arrow schema of one shard (a path from `shards`), from its footer only."""
    fs, _ = filesystem(output)
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).schema_arrow


def read_shard(output: str, path: str, columns: Sequence[str]) -> pa.Table:
    """The named columns of one shard (a path from `shards`), as written."""
    fs, _ = filesystem(output)
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).read(columns=list(columns))
