"""`claimdiff rewards`: presets recomputed from a run's outputs equal the judge-time rewards bit
for bit, in every counting and format; runs written before the label fields were recorded get
their labels back from the stored answers; and one preset's value is one plain expression in
DuckDB, pandas and polars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from claimdiff.cli import EXIT_OK, EXIT_USAGE, main
from claimdiff.io.datasets import read_rows
from claimdiff.judges.formats.paper_text import render_paper_text
from claimdiff.schemas.judge import JudgeOutput
from claimdiff.schemas.rows import DifferenceRow, RewardRow

PRESETS = """\
rewards:
  primary: relative
  presets:
    - {name: relative, kind: relative}
    - {name: actor_only, kind: actor_only}
    - {name: lambda_0.5, kind: lambda}
    - {name: tradeoff, kind: tradeoff, lam: 0.7}
    - {name: normalized_diff, kind: normalized_diff, counting: labels}
    - {name: normalized_diff_w, kind: normalized_diff, counting: labels, severity_weighted: true,
       ambiguity_penalty: true}
    - {name: normalized_a_only, kind: normalized_a_only, counting: labels}
    - {name: normalized_a_only_w, kind: normalized_a_only, severity_weighted: true}
    - {name: a_only, kind: a_only, counting: labels, severity_weighted: true}
    - {name: raw_diff, kind: raw_diff, min_reward: -1.0, reward_scale: 1.5}
    - {name: judgment_based, kind: judgment_based, counting: labels}
    - {name: hall_vs_miss, kind: hall_vs_miss, counting: labels, ambiguity_penalty: true}
    - {name: holistic, kind: holistic}
severity: {rule_set: paper}
"""
NAMES = [line.split("name: ")[1].split(",")[0] for line in PRESETS.splitlines()
         if "name: " in line]


def _judge(tmp: Path, manifest: Path, name: str, *extra: str) -> Path:
    config = tmp / "config.yaml"
    config.write_text(PRESETS)
    run = tmp / name
    assert main(["judge", "--manifest", str(manifest), "--output", str(run), "--config",
                 str(config), *extra]) == EXIT_OK
    return run


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("synth")
    assert main(["synth", "--n", "8", "--seed", "3", "--out", str(tmp / "data")]) == EXIT_OK
    return tmp / "data" / "manifest.jsonl"


@pytest.fixture(scope="module")
def json_run(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _judge(tmp_path_factory.mktemp("json"), synth, "run")


@pytest.fixture(scope="module")
def paper_run(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same gold, answered in the paper's plain-text format."""
    tmp = tmp_path_factory.mktemp("paper")
    lines = []
    for line in synth.read_text().splitlines():
        record = json.loads(line)
        record["gold"] = render_paper_text(JudgeOutput.model_validate(record["gold"]))
        record["image"] = str(synth.parent / record["image"])
        lines.append(json.dumps(record))
    manifest = tmp / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return _judge(tmp, manifest, "run", "--set", "judge.output_format=paper_text",
                  "--set", "judge.prompt=paper_v5")


def _values(run: Path, dataset: str = "rewards") -> dict[tuple[str, int], dict[str, Any]]:
    return {(r.manifest, r.row_index): {v.name: v.value for v in r.rewards}
            for r in read_rows(str(run), dataset, RewardRow)}


def _recompute(run: Path, preset: str, *sets: str) -> dict[tuple[str, int], Any]:
    args = ["rewards", str(run), "--preset", preset, "--overwrite"]
    for item in sets:
        args += ["--set", item]
    assert main(args) == EXIT_OK
    rows = read_rows(str(run), f"rewards-{preset}-v1", RewardRow)
    return {(r.manifest, r.row_index): r for r in rows}


@pytest.mark.parametrize("fixture", ["json_run", "paper_run"])
def test_recomputed_rewards_are_bit_identical(fixture: str, request: pytest.FixtureRequest):
    run: Path = request.getfixturevalue(fixture)
    judged = _values(run)
    original = {(r.manifest, r.row_index): r for r in read_rows(str(run), "rewards", RewardRow)}
    assert len(judged) > 30
    for name in NAMES:
        recomputed = _recompute(run, name)
        assert recomputed.keys() == judged.keys()
        for key, row in recomputed.items():
            assert row.rewards[0].value == judged[key][name], (name, key)  # ==, not approx
            assert row.preset_values == {name: judged[key][name]}
            assert row.reward == judged[key][name]
            assert row.stats == original[key].stats, (name, key)
    # the holistic preset has nothing to score without a holistic judge: null, never a number
    assert all(v["holistic"] is None for v in judged.values())


def test_the_recomputed_dataset_and_its_record(json_run: Path, capsys: pytest.CaptureFixture):
    assert main(["rewards", str(json_run), "--preset", "normalized_a_only", "--set",
                 "counting=labels", "--set", "version=3", "--set", "severity_weighted=true",
                 "--set", "severity.judge_severity=false"]) == EXIT_OK
    assert "normalized_a_only (normalized_a_only v3, counting labels)" in capsys.readouterr().out
    folder = json_run / "rewards-normalized_a_only-v3"
    record = json.loads((folder / "preset.json").read_text())
    assert record["preset"]["severity_weighted"] is True
    assert record["overrides"] == {"severity.judge_severity": False}
    assert record["severity"]["rule_set"] == "paper"
    schema = pq.read_schema(next(folder.glob("part-*.parquet")))
    assert schema.field("preset_values").type == pa.struct(
        [pa.field("normalized_a_only", pa.float64())])
    # the same version again is refused; --overwrite replaces it
    assert main(["rewards", str(json_run), "--preset", "normalized_a_only", "--set",
                 "version=3"]) == EXIT_USAGE
    assert "bump the preset's version" in capsys.readouterr().err


def test_a_changed_configuration_changes_the_weights(json_run: Path):
    default = _recompute(json_run, "normalized_a_only_w")
    heavier = _recompute(json_run, "normalized_a_only_w",
                         "severity.weights={1: 1.0, 2: 5.0, 3: 9.0}")
    changed = [key for key in default if default[key].reward != heavier[key].reward]
    assert changed
    # heavier weights for severities 2 and 3, and a larger largest weight to normalise by
    assert all(heavier[k].stats.actor_weighted_errors >= default[k].stats.actor_weighted_errors
               for k in default)
    assert any(heavier[k].stats.actor_weighted_errors > default[k].stats.actor_weighted_errors
               for k in changed)


@pytest.mark.parametrize(("args", "message"), [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--preset", "relative", "--set", "judge.backend=vllm"], "cannot change"),
    (["--preset", "relative", "--set", "counting=sometimes"], "invalid preset 'relative'"),
])
def test_usage_errors(json_run: Path, args: list[str], message: str,
                      capsys: pytest.CaptureFixture):
    assert main(["rewards", str(json_run), *args]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_old_runs_get_their_labels_from_the_stored_answers(paper_run: Path, tmp_path: Path):
    """A run written before the label fields: they are null in differences/; labels counting
    reads them back from `rewards.raw_answer` and gives the same values."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(paper_run, old)
    for shard in (old / "differences").glob("part-*.parquet"):
        table = pq.read_table(shard)
        rows = table.to_pylist()
        for row in rows:
            row["labels_recorded"] = False
            for side in ("actor", "reference"):
                for field in ("type", "detail", "severity", "severity_raw"):
                    row[f"{side}_label_{field}"] = None
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    for folder in old.glob("rewards-*"):
        shutil.rmtree(folder)
    judged = _values(paper_run)
    for name in ("normalized_diff", "judgment_based", "hall_vs_miss", "relative"):
        recomputed = _recompute(old, name)
        assert {k: r.reward for k, r in recomputed.items()} == {
            k: v[name] for k, v in judged.items()}, name


def test_difference_rows_keep_the_judges_labels(paper_run: Path):
    rows = read_rows(str(paper_run), "differences", DifferenceRow)
    assert rows
    assert all(r.labels_recorded for r in rows)
    erred = [r for r in rows if r.actor_erred]
    assert erred
    assert all(r.actor_label_type == r.actor_error_type for r in erred)
    assert any(r.reference_label_type is not None for r in rows)


def test_one_preset_is_one_plain_expression(json_run: Path):
    """`preset_values.<name>`: a struct field per preset, read without unnesting a list."""
    duckdb = pytest.importorskip("duckdb")
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    shards = sorted((json_run / "rewards").glob("part-*.parquet"))
    rows = read_rows(str(json_run), "rewards", RewardRow)
    for name in ("relative", "lambda_0.5", "normalized_a_only"):
        want = sorted((r.actor_id, r.row_index, next(v.value for v in r.rewards
                                                      if v.name == name)) for r in rows)
        glob = str(json_run / "rewards" / "*.parquet")
        got = duckdb.sql(f"SELECT actor_id, row_index, preset_values.\"{name}\" "
                         f"FROM read_parquet('{glob}')").fetchall()
        assert sorted(got) == want
        frame = pd.concat([pd.read_parquet(p) for p in shards])
        assert sorted(zip(frame["actor_id"], frame["row_index"],
                          frame["preset_values"].str[name], strict=True)) == want
        typed = pd.concat([pd.read_parquet(p, dtype_backend="pyarrow") for p in shards])
        assert sorted(zip(typed["actor_id"], typed["row_index"],
                          typed["preset_values"].struct.field(name), strict=True)) == want
        frame_pl = pl.read_parquet(glob).select(
            "actor_id", "row_index", pl.col("preset_values").struct.field(name))
        assert sorted(frame_pl.iter_rows()) == want


def test_show_leaves_out_values_a_preset_could_not_give(json_run: Path):
    from claimdiff.quality.summary import summarise

    summary = summarise(str(json_run))
    header = next(line for line in summary.splitlines() if line.startswith("actor_id"))
    assert "holistic" in header  # a column of dashes: no holistic scores in this run
