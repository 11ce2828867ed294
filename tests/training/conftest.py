"""Fixtures for the training tests: one synthetic judge run (labels judge: several captions per
image with different rewards), a run with failed rows, and a tiny random-weight LLaVA."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimdiff.synth import write_synthetic
from claimdiff.synth.sample import write_sample
from tests.pipeline_support import run


@pytest.fixture(scope="session")
def synth_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`claimdiff synth --n 6 --seed 0` judged by the labels judge."""
    root = tmp_path_factory.mktemp("synth-run")
    manifest = write_synthetic(str(root / "data"), n=6, seed=0)
    manifest_row = run(manifest, root / "run")
    assert manifest_row.status == "ok"
    return root / "run"


@pytest.fixture
def broken_run(tmp_path: Path) -> Path:
    """`claimdiff sample` data with its broken rows (a truncated and a missing image); its own
    copy per test, which may change its images."""
    root = tmp_path / "broken-run"
    manifest = write_sample(str(root / "data"), images=4, actors=3, seed=1)
    run(manifest, root / "run", {"run.max_failure_share": 1.0})
    return root / "run"


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("trl")
    from tests.support.tiny_vlm import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))
