"""`claimdiff export rwr`: the weight formula and the dataset `train rwr` reads."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from claimdiff.cli import EXIT_OK, main
from claimdiff.io.datasets import read_rows
from claimdiff.schemas.rows import RewardRow
from claimdiff.training.rwr import RwrConfig, export_rwr, rwr_weights


@pytest.mark.parametrize(("rewards", "beta", "max_weight"), [
    ([1.0, 0.5, 0.0], 0.25, 20.0),
    ([0.9, 0.8], 1.0, 20.0),
    ([1.0, 0.0, 0.0, 0.0], 0.01, 5.0),   # the clip binds
    ([0.3, 0.3, 0.3], 0.1, 20.0),        # equal rewards: plain SFT
    ([0.0, 1.0], 0.001, 1e6),            # exp(1000) would overflow without the clip
])
def test_weights_follow_the_formula(rewards, beta, max_weight):
    weights = rwr_weights(rewards, beta, max_weight)
    mean = sum(rewards) / len(rewards)
    clipped = [min(math.exp(min((r - mean) / beta, 700)), max_weight) for r in rewards]
    for (advantage, weight), r, u in zip(weights, rewards, clipped, strict=True):
        assert advantage == pytest.approx(r - mean)
        assert weight == pytest.approx(len(rewards) * u / sum(clipped))
        assert 0.0 <= weight <= len(rewards)
    # a sample's weights average 1, and a better caption never weighs less
    assert sum(w for _, w in weights) == pytest.approx(len(rewards))
    order = sorted(range(len(rewards)), key=lambda i: rewards[i])
    assert all(weights[a][1] <= weights[b][1] for a, b in itertools.pairwise(order))


def test_the_clip_binds_before_normalisation():
    # mean 0.25: A = 0.75 for the best, -0.25 for the others; exp(0.75 / 0.5) = 4.48 > 2
    (_, best), *rest = rwr_weights([1.0, 0.0, 0.0, 0.0], 0.5, 2.0)
    u_rest = math.exp(-0.25 / 0.5)
    assert best == pytest.approx(4 * 2.0 / (2.0 + 3 * u_rest))  # 2.09, not 2.85 unclipped
    assert [w for _, w in rest] == pytest.approx([4 * u_rest / (2.0 + 3 * u_rest)] * 3)


def test_rwr_rows_weigh_each_sample_to_its_size(synth_run: Path, tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "rwr"
    summary = export_rwr(str(synth_run), str(out), RwrConfig(preset="relative", beta=0.5))
    rewards = {(r.manifest, r.row_index): r for r in read_rows(str(synth_run), "rewards",
                                                               RewardRow)}
    dataset = datasets.load_dataset("parquet", data_files=str(out / "part-*.parquet"),
                                    split="train", cache_dir=str(tmp_path / "cache"))
    assert len(dataset) == summary.rows_written > 0
    assert summary.rows_written + sum(summary.dropped_rows.values()) == summary.rows_read
    by_sample: dict[str, list[dict]] = defaultdict(list)
    for row in dataset:
        source = rewards[(row["manifest"], row["row_index"])]
        assert row["completion"] == [{"role": "assistant", "content": [
            {"type": "text", "text": source.caption}]}]
        assert row["reward"] == source.reward
        assert row["prompt"][0]["content"][0] == {"type": "image", "text": None}
        assert row["images"][0].size == (256, 256)
        by_sample[row["sample_id"]].append(row)
    for sample, rows in by_sample.items():
        assert len(rows) == rows[0]["sample_size"] >= 2
        expected = rwr_weights([r["reward"] for r in rows], 0.5, 20.0)
        assert [r["weight"] for r in rows] == pytest.approx([w for _, w in expected]), sample
        assert sum(r["weight"] for r in rows) == pytest.approx(len(rows))
    assert summary.dropped_samples.get("single_caption", 0) == sum(
        1 for s in {r.sample_id for r in rewards.values()} if s not in by_sample)


def test_cli_export_rwr(synth_run: Path, tmp_path: Path, capsys):
    out = str(tmp_path / "w")
    assert main(["export", "rwr", str(synth_run), "--output", out, "--beta", "0.1",
                 "--max-weight", "3", "--min-group-size", "1"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("rwr: ")
    written = json.loads((tmp_path / "w.json").read_text())
    assert written["config"]["beta"] == 0.1
    assert written["config"]["max_weight"] == 3.0
    # min_group_size 1 keeps single-caption samples (at weight 1)
    assert "single_caption" not in written["dropped_samples"]
    assert written["rows_written"] == written["rows_read"]
