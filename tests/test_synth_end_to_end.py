"""synth -> judge (labels) -> eval, through the CLI, as a user runs it: the labels judge must
score 1.0 against its own gold, and the reward presets must rank every clean caption above each
of its edited ones, for every edit kind and severity."""

from __future__ import annotations

import json
from pathlib import Path

from claimdiff.cli import EXIT_OK, main


def test_synth_judge_eval(tmp_path: Path, capsys):
    assert main(["synth", "--n", "30", "--seed", "1", "--out", str(tmp_path / "data")]) == EXIT_OK
    manifest = capsys.readouterr().out.strip()
    assert main(["judge", "--manifest", manifest, "--output", str(tmp_path / "run"),
                 "--set", "judge.swap_fraction=0.5"]) == EXIT_OK
    report_path = tmp_path / "eval.json"
    assert main(["eval", "--run", str(tmp_path / "run"), "--gold", manifest,
                 "--report", str(report_path)]) == EXIT_OK
    report = json.loads(report_path.read_text())

    assert report["join"]["joined_judged"] == report["join"]["gold_items"] == 30 * 4
    for kind in ("actor_hallucination", "actor_omission", "reference_error"):
        overall = report[kind]["overall"]
        assert overall["gold"] > 0, kind
        assert (overall["precision"], overall["recall"]) == (1.0, 1.0), kind
    assert report["severity"]["quadratic_kappa"] == 1.0
    # gold labels answer the swapped roles with the mirrored gold: perfectly consistent
    swap = report["swap_consistency"]
    assert 30 < swap["rows"] < 90
    assert (swap["difference_consistency"], swap["judgment_consistency"]) == (1.0, 1.0)
    assert "swap_consistency" not in report["not_computed"]

    ordering = {p["name"]: p for p in report["reward_ordering"]["presets"]}
    for name in ("relative", "actor_only"):
        preset = ordering[name]
        assert preset["overall"]["pairs"] > 30
        assert preset["overall"]["share_correct"] == 1.0, name
        assert len(preset["by_edit"]) >= 8
        assert all(c["share_correct"] == 1.0 for c in preset["by_edit"].values()), name
        assert all(c["share_correct"] == 1.0 for c in preset["by_severity"].values()), name
