"""The same pipeline on worker processes: every stage's state must pickle, and the accounting
must hold when bundles run in other processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimdiff.synth.sample import write_sample
from tests.pipeline_support import read, run


@pytest.mark.slow
def test_multiprocess_run_matches_in_process(tmp_path: Path):
    manifest = write_sample(str(tmp_path / "data"), images=4, actors=3, seed=3)
    local = run(manifest, tmp_path / "local", {"run.max_failure_share": 0.5})
    multi = run(manifest, tmp_path / "multi", {"run.max_failure_share": 0.5},
                preset="multiprocess")
    assert multi.pipeline_options["direct_running_mode"] == "multi_processing"
    assert multi.accounting.balanced
    assert multi.accounting.model_dump(exclude={"differences"}) == local.accounting.model_dump(
        exclude={"differences"})
    assert multi.accounting.differences == local.accounting.differences
    assert multi.accounting.rows_in == 4 * 3 + 3

    def rewards(out: str) -> dict:
        return {(r["sample_id"], r["actor_id"], r["row_index"]): r["reward"]
                for r in read(tmp_path / out, "rewards")}

    assert rewards("multi") == rewards("local")
