"""Helpers for pipeline tests: run a job on a real Beam runner and read its outputs back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from claimdiff.config import ClaimdiffConfig, load_config
from claimdiff.pipelines.judge import JudgeJob, run_judge
from claimdiff.runners.options import pipeline_options
from claimdiff.schemas.run import RunManifest


def run(manifest: str | Path, output: str | Path, overrides: dict[str, Any] | None = None,
        preset: str = "local", **job: Any) -> RunManifest:
    config: ClaimdiffConfig = load_config(None, overrides)
    return run_judge(JudgeJob(manifest=str(manifest), output=str(output), config=config, **job),
                     pipeline_options([], preset, workers=2))


def read(output: str | Path, dataset: str) -> list[dict[str, Any]]:
    rows = ds.dataset(f"{output}/{dataset}", format="parquet").to_table().to_pylist()
    return sorted(rows, key=lambda r: (r.get("row_index") or 0, r.get("difference_index") or 0))
