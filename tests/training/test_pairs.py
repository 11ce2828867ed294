"""`claimdiff pairs`: the selection rule, its drop accounting, and the dataset it writes."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from claimdiff import exit_codes
from claimdiff.cli import EXIT_OK, EXIT_USAGE, main
from claimdiff.errors import UnreadableRunError
from claimdiff.io.datasets import read_rows
from claimdiff.schemas.rows import RewardRow
from claimdiff.training.groups import CaptionRow
from claimdiff.training.pairs import PairsConfig, export_pairs, select_pairs


def caption(text: str, index: int) -> CaptionRow:
    return CaptionRow(manifest="m", row_index=index, actor_id=f"a{index}", caption=text, ok=True,
                      rewards={}, image_sha256=None)


def scored(*items: tuple[str, float]) -> list[tuple[CaptionRow, float]]:
    return [(caption(text, i), reward) for i, (text, reward) in enumerate(items)]


@pytest.mark.parametrize(("items", "config", "expected", "dropped"), [
    # one pair per sample: the widest margin
    ([("a", 0.9), ("b", 0.5), ("c", 0.1)], {}, [("a", "c")], {"not_best": 2}),
    # every pair at the margin, widest first
    ([("a", 0.9), ("b", 0.5), ("c", 0.1)], {"strategy": "all_pairs"},
     [("a", "c"), ("a", "b"), ("b", "c")], {}),
    ([("a", 0.9), ("b", 0.5), ("c", 0.1)], {"strategy": "all_pairs", "max_pairs_per_sample": 1},
     [("a", "c")], {"over_limit": 2}),
    # the lower reward is rejected whatever the order
    ([("low", 0.2), ("high", 0.8)], {}, [("high", "low")], {}),
    # ties never pair
    ([("a", 0.5), ("b", 0.5)], {"min_margin": 0.0}, [], {"tie": 1}),
    # the same text (up to whitespace) never pairs with itself, whatever its rewards
    ([("a dog", 0.9), (" a  dog\n", 0.1)], {}, [], {"identical_text": 1}),
    # best vs worst skips the worst caption where it reads like the best
    ([("a", 0.9), ("b", 0.5), ("a", 0.1)], {}, [("a", "b")],
     {"identical_text": 1, "not_best": 1}),
    # the margin is inclusive, without float noise (0.3 - 0.2 < 0.1 in binary)
    ([("a", 0.3), ("b", 0.2)], {"min_margin": 0.1}, [("a", "b")], {}),
    ([("a", 0.3), ("b", 0.25)], {"min_margin": 0.1}, [], {"below_margin": 1}),
    # equal margins: the caption earlier in the manifest first
    ([("a", 1.0), ("b", 1.0), ("c", 0.0)], {"strategy": "all_pairs"},
     [("a", "c"), ("b", "c")], {"tie": 1}),
])
def test_select_pairs(items, config, expected, dropped):
    counter: Counter[str] = Counter()
    pairs = select_pairs(scored(*items), PairsConfig(**config), counter)
    assert [(p.chosen.caption.strip(), p.rejected.caption.strip()) for p in pairs] == expected
    assert dict(counter) == dropped


@pytest.mark.parametrize("strategy", ["best_vs_worst", "all_pairs"])
def test_select_pairs_invariants_on_random_groups(strategy):
    """Over many random groups (ties, repeated texts, any margin): chosen is never the
    rejected text, every kept margin is at least the minimum, and every candidate pair is
    either kept or counted."""
    rng = random.Random(0)
    for _ in range(400):
        n = rng.randint(2, 6)
        items = [(rng.choice("abcd"), rng.choice([0.0, 0.25, 0.5, 0.75, 1.0])) for _ in range(n)]
        config = PairsConfig(strategy=strategy, min_margin=rng.choice([0.0, 0.25, 0.5]))
        counter: Counter[str] = Counter()
        pairs = select_pairs(scored(*items), config, counter)
        assert len(pairs) + sum(counter.values()) == n * (n - 1) // 2
        for pair in pairs:
            assert pair.chosen.caption != pair.rejected.caption
            assert pair.chosen_reward > pair.rejected_reward
            assert pair.margin >= config.min_margin - 1e-9
        if strategy == "best_vs_worst":
            assert len(pairs) <= 1


def _rewards_by_row(run: Path) -> dict[tuple[str, int], RewardRow]:
    return {(r.manifest, r.row_index): r for r in read_rows(str(run), "rewards", RewardRow)}


def _value(row: RewardRow, preset: str) -> float:
    return next(v.value for v in row.rewards if v.name == preset)


@pytest.mark.parametrize("strategy", ["best_vs_worst", "all_pairs"])
def test_pairs_match_the_run_and_load_in_datasets(synth_run: Path, tmp_path: Path, strategy):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "pairs"
    summary = export_pairs(str(synth_run), str(out), PairsConfig(
        preset="actor_only", min_margin=0.05, strategy=strategy))
    rows = _rewards_by_row(synth_run)
    assert summary.rows_read == len(rows)
    assert summary.rows_written > 0
    assert json.loads((tmp_path / "pairs.json").read_text())["rows_written"] == (
        summary.rows_written)
    # every candidate pair is written or counted, and so is every sample
    assert summary.extra["candidate_pairs"] == summary.rows_written + sum(
        summary.dropped_pairs.values())
    assert summary.samples_read == summary.samples_used + sum(summary.dropped_samples.values())

    dataset = datasets.load_dataset("parquet", data_files=str(out / "part-*.parquet"),
                                    split="train", cache_dir=str(tmp_path / "cache"))
    assert len(dataset) == summary.rows_written
    assert isinstance(dataset.features["images"].feature, datasets.Image)
    seen = set()
    for pair in dataset:
        chosen = rows[(pair["chosen_manifest"], pair["chosen_row_index"])]
        rejected = rows[(pair["rejected_manifest"], pair["rejected_row_index"])]
        assert chosen.sample_id == rejected.sample_id == pair["sample_id"]
        assert pair["chosen"] == [{"role": "assistant",
                                   "content": [{"type": "text", "text": chosen.caption}]}]
        assert pair["rejected"][0]["content"][0]["text"] == rejected.caption != chosen.caption
        assert pair["chosen_reward"] == _value(chosen, "actor_only")
        assert pair["rejected_reward"] == _value(rejected, "actor_only")
        assert pair["margin"] >= 0.05
        assert pair["prompt"] == [{"role": "user", "content": [
            {"type": "image", "text": None},
            {"type": "text", "text": "Describe this image in detail."}]}]
        # the image is the file the run judged, decoded by `datasets`
        (image,) = pair["images"]
        assert isinstance(image, Image.Image)
        data = Path(chosen.image_uri).read_bytes()
        assert hashlib.sha256(data).hexdigest() == chosen.image_sha256
        assert image.tobytes() == Image.open(io.BytesIO(data)).convert(image.mode).tobytes()
        assert pair["image_path"] == chosen.image
        assert pair["image_uri"] == chosen.image_uri
        seen.add(pair["sample_id"])
        if strategy == "best_vs_worst":
            values = [_value(r, "actor_only") for r in rows.values()
                      if r.sample_id == pair["sample_id"]]
            assert pair["chosen_reward"] == max(values)
    assert len(seen) == summary.samples_used
    if strategy == "best_vs_worst":
        assert len(dataset) == len(seen)


def test_bucketed_grouping_gives_the_same_pairs(synth_run: Path, tmp_path: Path):
    """A run larger than bucket_rows is hash-partitioned on disk first: same pairs."""
    import pyarrow.dataset as ds

    def pairs(out: Path, **options) -> set[tuple]:
        export_pairs(str(synth_run), str(out), PairsConfig(strategy="all_pairs", **options))
        table = ds.dataset(str(out), format="parquet").to_table(
            columns=["sample_id", "chosen_row_index", "rejected_row_index", "margin"])
        return set(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))

    whole = pairs(tmp_path / "whole")
    assert whole
    assert pairs(tmp_path / "bucketed", bucket_rows=4) == whole
    assert pairs(tmp_path / "sharded", rows_per_shard=3) == whole
    assert len(list((tmp_path / "sharded").glob("part-*-of-*.parquet"))) > 1


def test_failed_rows_and_unreadable_images_are_counted(broken_run: Path, tmp_path: Path):
    rows = list(_rewards_by_row(broken_run).values())
    failed = sum(r.status == "failed" for r in rows)
    assert failed > 0
    # an image that changed after the run: its rewards are not about the new picture
    changed = next(r for r in rows if r.status == "ok")
    Path(changed.image_uri).write_bytes(Path(changed.image_uri).read_bytes() + b"\0")
    summary = export_pairs(str(broken_run), str(tmp_path / "pairs"),
                           PairsConfig(min_margin=0.0, strategy="all_pairs"))
    assert summary.dropped_rows["failed"] == failed
    assert summary.dropped_samples["image_unreadable"] == 1
    assert any("image changed" in e for e in summary.extra["image_errors"])
    assert summary.rows_written > 0
    # without embedding, images are not read back: rows carry the URI (verified by the run)
    summary = export_pairs(str(broken_run), str(tmp_path / "uris"), PairsConfig(
        min_margin=0.0, strategy="all_pairs", embed_images=False))
    assert "image_unreadable" not in summary.dropped_samples


def test_cli_pairs_refuses_unknown_presets_and_overwrites_on_request(synth_run: Path,
                                                                      tmp_path: Path, capsys):
    out = str(tmp_path / "p")
    assert main(["pairs", str(synth_run), "--output", out, "--preset", "nope"]) == EXIT_USAGE
    assert "preset 'nope' is not in the run's rewards" in capsys.readouterr().err
    assert main(["pairs", str(synth_run), "--output", out, "--min-margin", "0.2",
                 "--strategy", "all_pairs", "--set", "rows_per_shard=2"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert f"at {out}" in printed
    assert "dropped pairs" in printed
    summary = json.loads((tmp_path / "p.json").read_text())
    assert summary["config"]["min_margin"] == 0.2
    assert summary["config"]["rows_per_shard"] == 2
    assert summary["extra"]["preset"] == "relative"  # the run's primary
    assert main(["pairs", str(synth_run), "--output", out]) == EXIT_USAGE
    assert "--overwrite" in capsys.readouterr().err
    assert main(["pairs", str(synth_run), "--output", out, "--overwrite"]) == EXIT_OK
    assert main(["pairs", str(tmp_path), "--output", out]) == exit_codes.UNREADABLE
    # the run's own folder is never an export's: --overwrite would delete the run's shards
    assert main(["pairs", str(synth_run), "--output", str(synth_run), "--overwrite"]) == (
        EXIT_USAGE)
    assert "is a judge run's folder" in capsys.readouterr().err
    assert list((synth_run / "rewards").glob("part-*.parquet"))


def test_a_missing_extra_names_its_install():
    from claimdiff.errors import MissingExtraError
    from claimdiff.training.common import require

    with pytest.raises(MissingExtraError, match=r"pip install 'claimdiff\[train\]'"):
        require("claimdiff_no_such_module")


def test_pairs_config_is_validated():
    with pytest.raises(ValueError, match="min_margin"):
        PairsConfig(min_margin=-0.1)
    with pytest.raises(ValueError, match="extra"):
        PairsConfig.model_validate({"min_margn": 0.1})
    with pytest.raises(UnreadableRunError, match="does not exist"):
        export_pairs("/nonexistent-run", "/tmp/never", PairsConfig())
