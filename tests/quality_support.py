"""Runs for the quality report's tests: a clean synthetic run, and copies with planted defects.

Defects are planted by rewriting a copy's shards with pyarrow (the shard keeps its schema) or
its run.json, so each test changes exactly one thing about a run the real pipeline wrote.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from claimdiff.cli import EXIT_OK, main

SWEEP_CONFIG = """\
judge:
  mode: two_pass
  swap_fraction: 0.5
rewards:
  primary: relative
  presets:
    - {name: relative, kind: relative}
    - {name: actor_only, kind: actor_only}
    - {name: lambda_0, kind: tradeoff, lam: 0.0}
    - {name: lambda_0.5, kind: tradeoff, lam: 0.5}
    - {name: lambda_1, kind: tradeoff, lam: 1.0}
"""


@dataclass(frozen=True)
class SyntheticRun:
    manifest: Path
    run: Path


def make_synthetic_run(root: Path) -> SyntheticRun:
    """`claimdiff synth --n 8 --seed 0`, then `claimdiff judge` with the labels judge."""
    data = root / "data"
    assert main(["synth", "--n", "8", "--seed", "0", "--out", str(data)]) == EXIT_OK
    config = root / "judge.yaml"
    config.write_text(SWEEP_CONFIG, encoding="utf-8")
    run = root / "run"
    assert main(["judge", "--manifest", str(data / "manifest.jsonl"), "--output", str(run),
                 "--config", str(config), "--run-id", "synthetic"]) == EXIT_OK
    return SyntheticRun(data / "manifest.jsonl", run)


def copy_run(run: Path, target: Path) -> Path:
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("report"))
    return target


def only_shard(run: Path, dataset: str) -> Path:
    (path,) = sorted((run / dataset).glob("part-*.parquet"))
    return path


def rewrite_rows(run: Path, dataset: str,
                 change: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]) -> None:
    """Change a dataset's rows (as dicts) in place, or return new rows; the schema is kept."""
    path = only_shard(run, dataset)
    table = pq.read_table(path)
    rows = table.to_pylist()
    changed = change(rows)
    pq.write_table(pa.Table.from_pylist(rows if changed is None else changed,
                                        schema=table.schema), path)


def rewrite_table(run: Path, dataset: str, change: Callable[[pa.Table], pa.Table]) -> None:
    path = only_shard(run, dataset)
    pq.write_table(change(pq.read_table(path)), path)


def edit_run_json(run: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = run / "run.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2))
