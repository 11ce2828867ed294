"""Reading a run's outputs back (`run.json`, `differences/`, `rewards/`, `failures/`), via fsspec.

One reader for everything that reads outputs (`show`, `eval`, reports, exports, the accounting
check itself), on any fsspec URL the outputs were written to (local, gs:// with
`claimdiff[gcp]`, s3:// with `claimdiff[aws]`, memory:// in tests).

A run is *committed* when its `run.json` exists: the run writes it last, atomically, and it lists
every shard the run wrote. Readers read only committed runs, and only the shards `run.json`
lists, so a folder left by a killed run (shards without `run.json`), a shard from another run, or
a listed shard that went missing is refused with one line (`IncompleteRunError`) instead of being
read as if it were a whole run. Only the run itself, before it commits, reads its own shards
uncommitted (`committed=False`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError

from claimdiff.errors import IncompleteRunError
from claimdiff.io.claims import read_claim
from claimdiff.io.fs import filesystem as filesystem
from claimdiff.io.fs import join as join
from claimdiff.schemas.arrow import from_table
from claimdiff.schemas.run import RunManifest

ModelT = TypeVar("ModelT", bound=BaseModel)
SHARD_GLOB = "part-*.parquet"
RUN_MANIFEST = "run.json"


def read_run_manifest(output: str) -> RunManifest:
    """The committed `run.json` of `output`, or `IncompleteRunError` saying why there is none."""
    fs, root = filesystem(output)
    path = join(root, RUN_MANIFEST)
    try:
        data = fs.cat_file(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        claim = read_claim(output)
        if claim is not None:
            raise IncompleteRunError(
                f"{output} holds no finished run: run {claim.run_id} (pid {claim.pid} on "
                f"{claim.host}) claimed it and has not committed (still running, or killed)"
            ) from None
        if fs.isdir(root):
            raise IncompleteRunError(
                f"{output} holds no finished run (no {RUN_MANIFEST}: the run was killed before "
                "it committed, or this is not a run folder); rerun it with --overwrite"
            ) from None
        raise IncompleteRunError(f"{output} does not exist") from None
    try:
        return RunManifest.model_validate_json(data)
    except ValidationError as exc:
        raise IncompleteRunError(
            f"{output}/{RUN_MANIFEST} is not a readable run manifest ({exc.error_count()} "
            "problems); rerun the run with --overwrite") from exc


def shards(output: str, dataset: str, *, committed: bool = True) -> list[str]:
    """The shard paths of one dataset, sorted (paths of the output's filesystem).

    Committed (the default): the run must have committed, and for the datasets the run wrote,
    exactly the shards `run.json` lists, each checked to exist (other datasets, written later
    by other commands: the shards there). Uncommitted: whatever shards are there (the run's own
    accounting, before it commits).
    """
    fs, root = filesystem(output)
    if not committed:
        return sorted(fs.glob(join(root, dataset, SHARD_GLOB)))
    run = read_run_manifest(output)
    if dataset not in run.files:
        # a dataset written after the run by another command (`claimdiff rewards`, exports),
        # each committed its own way; or a run from before shard listings
        return sorted(fs.glob(join(root, dataset, SHARD_GLOB)))
    listed = [join(root, dataset, shard.name) for shard in run.files.get(dataset, [])]
    missing = [path for path in listed if not fs.exists(path)]
    if missing:
        raise IncompleteRunError(
            f"{output}: run.json lists {len(missing)} {dataset} shard(s) that are missing "
            f"(first: {missing[0]}); the run folder was changed after the run")
    return listed


def has_dataset(output: str, dataset: str) -> bool:
    """Whether the committed run has this dataset (possibly with no rows)."""
    run = read_run_manifest(output)
    if dataset in run.files:
        return True
    fs, root = filesystem(output)
    return bool(fs.isdir(join(root, dataset)))


def read_columns(output: str, dataset: str, columns: Sequence[str], *,
                 committed: bool = True) -> dict[str, list[Any]]:
    """Columns of every shard, concatenated in shard order."""
    fs, _ = filesystem(output)
    values: dict[str, list[Any]] = {c: [] for c in columns}
    for path in shards(output, dataset, committed=committed):
        with fs.open(path, "rb") as handle:
            table = pq.ParquetFile(handle).read(columns=list(columns))
        for column in columns:
            values[column].extend(table.column(column).to_pylist())
    return values


def shard_rows(output: str, dataset: str, *, committed: bool = True) -> dict[str, int]:
    """Rows per shard file name."""
    fs, _ = filesystem(output)
    counts: dict[str, int] = {}
    for path in shards(output, dataset, committed=committed):
        with fs.open(path, "rb") as handle:
            counts[path.rsplit("/", 1)[-1]] = pq.ParquetFile(handle).metadata.num_rows
    return counts


def num_rows(output: str, dataset: str, *, committed: bool = True) -> int:
    return sum(shard_rows(output, dataset, committed=committed).values())


def read_rows(output: str, dataset: str, model: type[ModelT], *,
              committed: bool = True) -> list[ModelT]:
    """Every row of one dataset as validated models."""
    fs, _ = filesystem(output)
    rows: list[ModelT] = []
    for path in shards(output, dataset, committed=committed):
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
