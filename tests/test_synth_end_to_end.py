"""synth -> judge (labels) -> eval, through the CLI, as a user runs it: the labels judge must
score 1.0 against its own gold, and the reward presets must rank every clean caption above each
of its edited ones, for every edit kind that gives the actor an error and every severity."""

from __future__ import annotations

import json
from pathlib import Path

from claimdiff.cli import EXIT_OK, main
from claimdiff.schemas.rows import Outcome
from claimdiff.synth import INTENDED_OUTCOMES

ACTOR_ERRORS = {Outcome.ACTOR_HALLUCINATION, Outcome.ACTOR_OMISSION}
# the edits whose caption is worse than the clean one: the ones the ordering check ranks
RANKED_EDITS = {kind for kind, outcomes in INTENDED_OUTCOMES.items()
                if ACTOR_ERRORS & set(outcomes)}


def test_synth_judge_eval(tmp_path: Path, capsys):
    assert main(["synth", "--n", "30", "--seed", "1", "--out", str(tmp_path / "data")]) == EXIT_OK
    manifest = capsys.readouterr().out.strip()
    records = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    assert main(["judge", "--manifest", manifest, "--output", str(tmp_path / "run"),
                 "--set", "judge.swap_fraction=0.5"]) == EXIT_OK
    report_path = tmp_path / "eval.json"
    assert main(["eval", "--run", str(tmp_path / "run"), "--gold", manifest,
                 "--report", str(report_path)]) == EXIT_OK
    report = json.loads(report_path.read_text())

    # a clean and three edited captions per image, and a clean one per both-wrong sample
    both_wrong = sum(1 for r in records if r["edit"] == "both_wrong")
    assert both_wrong > 0
    assert report["join"]["joined_judged"] == report["join"]["gold_items"] == len(records) == (
        30 * 4 + both_wrong)
    for kind in ("actor_hallucination", "actor_omission", "reference_error"):
        overall = report[kind]["overall"]
        assert overall["gold"] > 0, kind
        assert (overall["precision"], overall["recall"], overall["f1"]) == (1.0, 1.0, 1.0), kind
    for side in ("severity", "reference_severity"):
        assert report[side]["pairs"] > 0, side
        assert report[side]["quadratic_kappa"] == 1.0, side
    # gold labels answer the swapped roles with the mirrored gold: perfectly consistent
    swap = report["swap_consistency"]
    assert 30 < swap["rows"] < 100
    assert (swap["difference_consistency"], swap["judgment_consistency"]) == (1.0, 1.0)
    assert "swap_consistency" not in report["not_computed"]

    ordering = report["reward_ordering"]
    # a sample has pairs where some caption has an actor error: both-wrong samples (clean vs
    # both wrong) and most images' own samples (not where all edits leave the actor clean)
    ranked = {r["sample_id"] for r in records if r["edit"] in RANKED_EDITS}
    assert sum(1 for s in ranked if "-r" in s) == both_wrong
    assert ordering["samples"] == len(ranked)
    presets = {p["name"]: p for p in ordering["presets"]}
    for name in ("relative", "actor_only"):
        preset = presets[name]
        assert preset["overall"]["pairs"] == ordering["gold_pairs"] > 30
        assert preset["overall"]["share_correct"] == 1.0, name
        assert preset["overall"]["samples"] == len(ranked)
        assert preset["overall"]["sample_pass_rate"] == 1.0, name
        assert set(preset["by_edit"]) == RANKED_EDITS, name
        for breakdown in ("by_edit", "by_severity"):
            assert all(c["share_correct"] == c["sample_pass_rate"] == 1.0
                       for c in preset[breakdown].values()), (name, breakdown)
