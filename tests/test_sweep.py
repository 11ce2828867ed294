"""`claimdiff sweep` and the presets on the synthetic set with gold labels (the labels judge):
raising lambda lowers the preferred captions' hallucination rate and raises their omission rate;
the relative preset prefers an actor that is right where the reference is wrong; actor-only
presets never charge a reference error."""

from __future__ import annotations

import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from claimdiff.cli import EXIT_OK, EXIT_USAGE, main
from claimdiff.errors import ConfigError
from claimdiff.io.datasets import read_rows
from claimdiff.rewards.sweep import lambda_grid
from claimdiff.schemas.rows import RewardRow

CONFIG = """\
rewards:
  primary: relative
  presets:
    - {name: relative, kind: relative}
    - {name: actor_only, kind: actor_only}
    - {name: a_only, kind: a_only}
    - {name: a_only_labels, kind: a_only, counting: labels}
    - {name: normalized_a_only, kind: normalized_a_only}
    - {name: normalized_a_only_labels, kind: normalized_a_only, counting: labels}
    - {name: lambda_0.5, kind: lambda}
"""
ACTOR_ONLY = ("actor_only", "a_only", "a_only_labels", "normalized_a_only",
              "normalized_a_only_labels")
REFERENCE_ONLY_ERRORS = {"reference_error", "reference_hallucination"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("sweep")
    assert main(["synth", "--n", "24", "--seed", "5", "--out", str(tmp / "data")]) == EXIT_OK
    (tmp / "config.yaml").write_text(CONFIG)
    assert main(["judge", "--manifest", str(tmp / "data" / "manifest.jsonl"), "--output",
                 str(tmp / "run"), "--config", str(tmp / "config.yaml")]) == EXIT_OK
    return tmp / "run"


def _rows(run: Path) -> list[tuple[RewardRow, dict[str, float | None], str]]:
    rows = []
    for row in read_rows(str(run), "rewards", RewardRow):
        metadata = json.loads(row.metadata or "{}")
        rows.append((row, {v.name: v.value for v in row.rewards}, metadata["edit_outcome"]))
    return rows


def _sweep(run: Path, tmp_path: Path, *extra: str) -> dict:
    report = tmp_path / "sweep.json"
    assert main(["sweep", str(run), "--lambda", "0:1:0.1", "--report", str(report),
                 "--plot", str(tmp_path / "frontier.png"), *extra]) == EXIT_OK
    return json.loads(report.read_text())


def test_raising_lambda_trades_hallucinations_for_omissions(run: Path, tmp_path: Path):
    # without the clean captions every image must choose between kinds of errors
    report = _sweep(run, tmp_path, "--exclude", "clean")
    points = report["points"]
    assert [p["lam"] for p in points] == [round(0.1 * i, 10) for i in range(11)]
    hallucination = [p["hallucinations_per_100_words"] for p in points]
    omission = [p["omissions_per_100_words"] for p in points]
    omission_per_image = [p["omissions_per_image"] for p in points]
    assert all(a >= b for a, b in itertools.pairwise(hallucination))
    assert all(a <= b for a, b in itertools.pairwise(omission))
    assert all(a <= b for a, b in itertools.pairwise(omission_per_image))
    assert hallucination[-1] < hallucination[0]
    assert omission[-1] > omission[0]
    assert [p["label"] for p in report["presets"]] == ["relative"]  # no holistic scores here
    assert (tmp_path / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_with_clean_captions_every_image_prefers_them(run: Path, tmp_path: Path):
    report = _sweep(run, tmp_path, "--no-plot")
    for point in report["points"]:
        # a clean caption has no error in either dimension: it is preferred at every lambda
        # except on images whose reference is wrong (there the clean caption is judged against
        # a corrupted reference and still errs nowhere)
        assert point["hallucinations_per_100_words"] == 0.0
        assert point["omissions_per_100_words"] == 0.0


def test_relative_prefers_the_actor_that_is_right_where_the_reference_is_wrong(run: Path):
    by_sample: dict[str, list] = defaultdict(list)
    for row, values, outcome in _rows(run):
        by_sample[row.sample_id].append((row, values, outcome))
    checked = 0
    for group in by_sample.values():
        right = [(row, v) for row, v, outcome in group if outcome in REFERENCE_ONLY_ERRORS]
        if not right:
            continue
        for row, values in right:
            assert values["relative"] is not None
            assert values["relative"] > 0.5
            assert row.stats is not None
            assert row.stats.actor_errors == 0
        best = max(group, key=lambda item: item[1]["relative"] or 0.0)
        assert best[0].stats is not None
        assert best[0].stats.actor_errors == 0
        assert best[2] in REFERENCE_ONLY_ERRORS
        others = [v["relative"] for _, v, outcome in group if outcome not in REFERENCE_ONLY_ERRORS]
        assert all(best[1]["relative"] > other for other in others if other is not None)
        checked += 1
    assert checked >= 3


def test_actor_only_presets_never_charge_a_reference_error(run: Path):
    rows = _rows(run)
    charged_free = [(row, values) for row, values, outcome in rows
                    if outcome in REFERENCE_ONLY_ERRORS]
    with_actor_errors = [values for row, values, outcome in rows
                         if row.stats is not None and row.stats.actor_errors > 0]
    assert charged_free
    assert with_actor_errors
    for row, values in charged_free:
        assert row.stats is not None
        assert row.stats.labels is not None
        assert row.stats.labels.actor_errors == row.stats.actor_errors == 0
        assert row.stats.reference_errors > 0
        for name in ("actor_only", "a_only", "a_only_labels"):
            assert values[name] == 1.0, name  # the maximum: nothing charged
        for name in ACTOR_ONLY:
            assert all(values[name] > other[name] for other in with_actor_errors), name


def test_lambda_grid():
    assert lambda_grid("0:1:0.1")[3] == 0.3
    assert len(lambda_grid("0:1:0.1")) == 11
    assert lambda_grid("1, 0.5,0") == [0.0, 0.5, 1.0]
    for bad in ("0:1:0", "1:0:0.1", "0:2:0.5", "a:b:c", "0:1:0.0001"):
        with pytest.raises(ConfigError):
            lambda_grid(bad)


def test_a_missing_plot_extra_names_its_install(run: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["sweep", str(run), "--plot", str(tmp_path / "x.png")]) == EXIT_USAGE
    assert "pip install 'claimdiff[plot]'" in capsys.readouterr().err
