"""`claimdiff report` on real runs: a clean synthetic run passes; each planted defect fails
exactly the expectation it should, with the documented exit code."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pytest

from claimdiff.cli import EXIT_USAGE, main
from claimdiff.errors import UnreadableRunError
from claimdiff.quality import (
    EXIT_BREACHED,
    EXIT_PASS,
    EXIT_UNREADABLE,
    QualityConfig,
    QualityResult,
    assess,
    build_report,
    parse_quality_config,
)
from claimdiff.quality.plots import frontier_points, render_plots
from tests.quality_support import (
    copy_run,
    edit_run_json,
    only_shard,
    rewrite_rows,
    rewrite_table,
)

pytestmark = pytest.mark.slow  # each test validates a real run with Great Expectations


@pytest.fixture(scope="module")
def clean(synthetic_run) -> Any:
    """The clean run's assessment, for the tests that only read it."""
    return assess(str(synthetic_run.run))


def checked(run: Path, **kwargs: Any) -> QualityResult:
    result = assess(str(run), **kwargs).result
    assert result.exit_code == (EXIT_BREACHED if result.failed else EXIT_PASS)
    assert result.outcome == ("breached" if result.failed else "pass")
    return result


def failed(run: Path, **kwargs: Any) -> set[str]:
    return set(checked(run, **kwargs).failed)


def test_the_clean_synthetic_run_passes_every_expectation(synthetic_run, monkeypatch):
    """...without a network connection, and with Great Expectations' usage statistics off."""
    attempts: list[Any] = []
    connect = socket.socket.connect

    def refuse(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError("the quality report must not use the network")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "true")
    result = assess(str(synthetic_run.run)).result
    assert attempts == []
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    from claimdiff.quality.validate import _context, _import_gx

    assert _context(_import_gx(), None).get_config().analytics_enabled is False
    assert result.outcome == "pass"
    assert result.exit_code == EXIT_PASS
    assert result.failed == []
    assert result.passed == len(result.expectations) > 100
    # two-pass, position swaps and a lambda sweep: nothing is left uncomputed
    assert result.not_computed == []
    families = Counter(e.family for e in result.expectations)
    assert set(families) == {"schema", "values", "identity", "health", "accounting", "noise"}
    observed = {e.id: e.observed for e in result.expectations}
    assert observed["noise.swap_judgment_consistency"] == "1"
    assert observed["noise.verify_disagreement_rate"] == "0"
    assert observed["health.failure_share"] == "0"
    assert result.run_summary["rows_in"] == 33
    assert result.run_summary["differences"] == 25
    assert result.suite["version"] == 1
    assert len(result.suite["schema_sha256"]) == 64


def _duplicate_difference_id(rows):
    """A second difference row that claims the identity of the first one."""
    first, second = rows[0], rows[1]
    for key in ("manifest", "row_index", "difference_index"):
        second[key] = first[key]


def _set(column: str, value: Any, where: str | None = None):
    def change(rows):
        target = next(r for r in rows if where is None or r.get(where) is not None)
        target[column] = value
    return change


def _set_nested(column: str, field: str, value: Any):
    def change(rows):
        for row in rows:
            if row[column] is not None:
                row[column][field] = value
    return change


def _reward_value(name: str, value: float):
    def change(rows):
        row = next(r for r in rows if r["status"] == "ok")
        next(v for v in row["rewards"] if v["name"] == name)["value"] = value
    return change


def _rename_reward(name: str, new_name: str):
    def change(rows):
        row = next(r for r in rows if r["status"] == "ok")
        next(v for v in row["rewards"] if v["name"] == name)["name"] = new_name
    return change


def _rows_judged_plus_one(manifest):
    manifest["accounting"]["rows_judged"] += 1


def _lose_a_judged_row(run: Path):
    """Drop an ok reward row that has no differences (its run.json still counts it)."""
    import pyarrow.parquet as pq

    with_differences = {r["row_index"] for r in pq.read_table(
        only_shard(run, "differences")).to_pylist()}

    def change(rows):
        lost = next(r for r in rows if r["row_index"] not in with_differences)
        return [r for r in rows if r is not lost]
    rewrite_rows(run, "rewards", change)


DEFECTS: dict[str, tuple[str, Any, set[str]]] = {
    # name: (dataset or run.json, change, the expectations it must fail)
    "confidence out of range": ("differences", _set("confidence", 1.7),
                                {"differences.confidence.range"}),
    "severity 4": ("differences", _set("actor_severity", 4, where="actor_severity"),
                   {"differences.actor_severity.range"}),
    "unknown judgment": ("differences", _set("judgment", "maybe"),
                         {"differences.judgment.in_set"}),
    "unknown outcome": ("differences", _set("outcomes", ["great"]),
                        {"differences.outcomes.outcomes.in_set"}),
    "duplicated difference id": ("differences", _duplicate_difference_id,
                                 {"differences.identity.unique"}),
    "difference of another run": ("differences", _set("run_id", "other"),
                                  {"differences.run_id.matches_run"}),
    "reward out of range": ("rewards", _reward_value("relative", 1.5),
                            {"rewards.rewards.value.range.relative"}),
    "reward of an unknown preset": ("rewards", _rename_reward("actor_only", "mystery"),
                                    {"rewards.rewards.name.configured"}),
    "NaN reward on an ok row": ("rewards", _set("reward", math.nan),
                                {"rewards.ok_rows_have_reward",
                                 "rewards.null_reward_has_failure_row"}),
    "every answer retried": ("rewards", _set_nested("stats", "judge_attempts", 2),
                             {"health.parse_retry_share"}),
    "run.json counts a row the shards lack": ("run.json", _rows_judged_plus_one,
                                              {"accounting.run_json_matches_shards"}),
}


@pytest.mark.parametrize("name", list(DEFECTS))
def test_a_planted_defect_fails_exactly_its_expectation(synthetic_run, tmp_path, name):
    dataset, change, expected = DEFECTS[name]
    run = copy_run(synthetic_run.run, tmp_path / "run")
    if dataset == "run.json":
        edit_run_json(run, change)
    else:
        rewrite_rows(run, dataset, change)
    assert failed(run) == expected


def test_a_lost_row_unbalances_the_accounting(synthetic_run, tmp_path, capsys):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    _lose_a_judged_row(run)
    assert main(["report", str(run), "--no-html", "--json"]) == EXIT_BREACHED
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["failed"]) == {"accounting.run_json_matches_shards",
                                      "accounting.balanced"}
    assert printed["report"] is None
    assert not (run / "report").exists()


def test_a_column_of_the_wrong_type_fails_the_schema_and_skips_its_checks(
        synthetic_run, tmp_path):
    run = copy_run(synthetic_run.run, tmp_path / "run")

    def as_text(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index("confidence")
        return table.set_column(index, "confidence", table["confidence"].cast(pa.string()))
    rewrite_table(run, "differences", as_text)
    result = assess(str(run)).result
    assert set(result.failed) == {"schema.differences"}
    schema = next(e for e in result.expectations if e.id == "schema.differences")
    assert "confidence: expected double, found string" in schema.observed
    assert {s.id for s in result.not_computed} == {"differences.confidence.range"}


def test_an_older_run_without_captions_skips_the_span_check_only(synthetic_run, tmp_path):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    rewrite_table(run, "rewards", lambda t: t.drop_columns(["caption", "reference", "image"]))
    result = checked(run)
    assert result.failed == []
    absent = "absent from shard part-00000-of-00001.parquet"
    assert {s.id: s.reason for s in result.not_computed} == {
        "health.span_mismatch_share": "caption, reference cannot be read (runs before "
        "rewards/ carried the caption have no span check)",
        **{f"rewards.{c}.not_null": f"column {c}: {absent}"
           for c in ("caption", "reference", "image")}}


def test_spans_not_in_the_caption_fail_the_span_check(synthetic_run, tmp_path):
    run = copy_run(synthetic_run.run, tmp_path / "run")

    def invent(rows):
        for row in rows[::3]:
            if row["actor_span"] is not None:
                row["actor_span"] = "a purple elephant on the roof"
    rewrite_rows(run, "differences", invent)
    result = checked(run)
    assert result.failed == ["health.span_mismatch_share"]
    share = next(e for e in result.expectations if e.id == "health.span_mismatch_share")
    assert float(share.observed) > 0.1


def test_a_failure_share_over_the_threshold(synthetic_run, tmp_path):
    """A real run whose manifest names images that do not exist: the judge itself exits 1
    (its run.max_failure_share is passed) and the report breaches the failure share only."""
    records = [json.loads(line) for line in synthetic_run.manifest.read_text().splitlines()]
    broken = [dict(r, image=f"images/missing_{i}.png", sample_id=f"missing-{i}")
              for i, r in enumerate(records[:5])]
    manifest = synthetic_run.manifest.parent / f"with-missing-{uuid.uuid4().hex[:6]}.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records + broken))
    run = tmp_path / "run"
    try:
        assert main(["judge", "--manifest", str(manifest), "--output", str(run)]) == 1
    finally:
        manifest.unlink()
    assert failed(run) == {"health.failure_share"}
    limits = parse_quality_config("thresholds: {max_failure_share: 0.5, "
                                  "max_failure_share_by_stage: {load_image: 0.1}, "
                                  "max_failure_share_by_reason: {ImageError: 0.2}}")
    assessment = assess(str(run), config=limits)
    result = assessment.result
    assert result.failed == ["health.failure_share.stage.load_image"]
    observed = {e.id: e.observed for e in result.expectations}
    assert observed["health.failure_share.reason.ImageError"] == f"{5 / 38:.4g}"
    plots, _ = render_plots(assessment.data)
    failures = next(p for p in plots if p.id == "failure-reasons")
    assert failures.png.startswith(b"\x89PNG")


def test_a_judge_that_finds_nothing(synthetic_run, tmp_path):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    rewrite_rows(run, "differences", lambda rows: [])
    edit_run_json(run, lambda manifest: manifest["accounting"].update(differences=0))
    result = checked(run)
    assert result.failed == ["health.zero_difference_images"]
    assert {s.id: s.reason for s in result.not_computed} == {
        "health.spurious_share": "no differences", "health.unverifiable_share": "no differences"}


def test_the_lambda_frontier_trades_hallucinations_for_omissions(clean):
    points = frontier_points(clean.data)
    assert [lam for lam, _, _ in points] == [0.0, 0.5, 1.0]
    hallucinations = [h for _, h, _ in points]
    omissions = [o for _, _, o in points]
    # lambda weighs hallucinations: the more it does, the fewer survive and the more omissions
    assert hallucinations == sorted(hallucinations, reverse=True)
    assert omissions == sorted(omissions)
    assert hallucinations[0] > hallucinations[-1]
    assert omissions[0] < omissions[-1]


def test_drift_against_a_baseline(synthetic_run, tmp_path):
    baseline = str(synthetic_run.run)
    same = assess(baseline, baseline=baseline).result
    drift_ids = {e.id for e in same.expectations if e.family == "drift"}
    assert drift_ids == {"drift.canonical_type", "drift.severity",
                         *(f"drift.reward_mean.{p}" for p in
                           ("relative", "actor_only", "lambda_0", "lambda_0.5", "lambda_1"))}
    assert same.failed == []
    assert same.drift is not None
    assert same.drift["drift.canonical_type"]["distance"] == 0.0

    run = copy_run(synthetic_run.run, tmp_path / "run")
    rewrite_rows(run, "differences", lambda rows: [
        dict(r, actor_canonical_type="count") if r["actor_erred"] else r for r in rows])
    result = checked(run, baseline=baseline)
    assert result.failed == ["drift.canonical_type"]
    distance = result.drift["drift.canonical_type"]["distance"]
    assert 0.2 < distance < 1.0
    assert result.drift["drift.canonical_type"]["run"]["count"] == sum(
        result.drift["drift.canonical_type"]["baseline"].values())

    strict = QualityConfig.model_validate({"drift": {"min_errors": 1000}})
    result = assess(str(run), baseline=baseline, config=strict).result
    assert result.failed == []
    assert {s.id for s in result.not_computed} == {"drift.canonical_type", "drift.severity"}


def test_a_custom_expectation_from_the_config_file(synthetic_run, tmp_path):
    config = parse_quality_config("""
expectations:
  - id: team.short_captions
    frame: rewards.stats
    type: expect_column_max_to_be_between
    kwargs: {column: actor_words, max_value: 10}
  - id: team.no_hedges_on_clean
    frame: rewards
    type: expect_column_values_to_not_be_null
    kwargs: {column: caption}
    where: {column: actor_id, op: "==", value: clean}
disable: ["rewards.decoding.*"]
""")
    result = assess(str(synthetic_run.run), config=config).result
    assert result.failed == ["team.short_captions"]
    custom = {e.id: e for e in result.expectations if e.family == "custom"}
    assert custom["team.no_hedges_on_clean"].success
    assert not [e for e in result.expectations if e.id.startswith("rewards.decoding.")]
    bad = parse_quality_config("expectations: [{id: x, frame: rewards, "
                               "type: expect_no_such_thing}]")
    from claimdiff.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown expectation type"):
        assess(str(synthetic_run.run), config=bad)
    wrong_kwargs = parse_quality_config("expectations: [{id: x, frame: rewards, "
                                        "type: expect_column_values_to_be_between, "
                                        "kwargs: {colum: reward}}]")
    with pytest.raises(ConfigError, match="expectation x"):
        assess(str(synthetic_run.run), config=wrong_kwargs)


@pytest.mark.parametrize("damage", ["no run.json", "run.json not a manifest",
                                    "shard not parquet", "no failures folder"])
def test_an_unreadable_run(synthetic_run, tmp_path, damage, capsys):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    if damage == "no run.json":
        (run / "run.json").unlink()
    elif damage == "run.json not a manifest":
        (run / "run.json").write_text('{"run_id": 3}')
    elif damage == "shard not parquet":
        only_shard(run, "rewards").write_bytes(b"not parquet at all")
    else:
        for path in (run / "failures").iterdir():
            path.unlink()
        (run / "failures").rmdir()
    with pytest.raises(UnreadableRunError):
        assess(str(run))
    assert main(["report", str(run), "--json"]) == EXIT_UNREADABLE
    printed = json.loads(capsys.readouterr().out)
    assert printed["outcome"] == "unreadable"
    assert printed["exit_code"] == EXIT_UNREADABLE
    assert printed["error"]
    assert not (run / "report").exists()


def test_an_unreadable_baseline(synthetic_run, tmp_path, capsys):
    code = main(["report", str(synthetic_run.run), "--baseline", str(tmp_path / "none")])
    assert code == EXIT_UNREADABLE
    assert "unreadable run: baseline" in capsys.readouterr().err
    assert not (synthetic_run.run / "report").exists()


def test_cli_writes_the_report_and_says_how_it_went(synthetic_run, tmp_path, capsys):
    run = copy_run(synthetic_run.run, tmp_path / "run")
    assert main(["report", str(run), "--by", "edit", "--json"]) == EXIT_PASS
    printed = json.loads(capsys.readouterr().out)
    report = run / "report"
    assert {p.name for p in report.iterdir()} == {"index.html", "report.json", "data_docs"}
    written = json.loads((report / "report.json").read_text())
    assert written == printed
    assert written["outcome"] == "pass"
    assert written["report"] == str(report / "index.html")
    pages = [e["data_docs"] for e in written["expectations"]]
    assert all(pages)
    assert all((report / page).is_file() for page in pages)
    assert (report / "data_docs" / "index.html").is_file()
    for path in (report / "data_docs").rglob("*"):
        if path.suffix in (".html", ".css"):  # nothing there fetches from the network
            text = path.read_text()
            assert not re.search(r"<(?:script|link|img)\b[^>]*(?:https?:)?//", text), path
            assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", text), path
    assert not list((report / "data_docs").rglob("*.gif"))  # GE's unused animations
    html = (report / "index.html").read_text()
    assert "https://" not in html.split("<body>")[0]
    assert html.count('<figure id="plot-') == 5  # no failures: no failure-reason plot

    # a second report replaces the first; a breach exits 4 and says what was breached
    rewrite_rows(run, "differences", _set("confidence", -0.5))
    assert main(["report", str(run), "--set", "thresholds.max_spurious_share=0.5"]) == (
        EXIT_BREACHED)
    text = capsys.readouterr().out
    assert text.startswith("run synthetic: breached (")
    assert "  breached differences.confidence.range: 1 of 25 unexpected: -0.5" in text
    assert f"  report {report / 'index.html'}" in text
    assert json.loads((report / "report.json").read_text())["failed"] == [
        "differences.confidence.range"]


def test_cli_usage_errors_exit_2(synthetic_run, tmp_path, capsys):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["report", str(synthetic_run.run), "--out", str(other)]) == EXIT_USAGE
    assert "is not a claimdiff report" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds: {max_spurious_share: 3}\n")
    assert main(["report", str(synthetic_run.run), "--config", str(bad)]) == EXIT_USAGE
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(synthetic_run.run), "--no-html", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == EXIT_USAGE


def test_a_report_on_object_storage(synthetic_run, clean):
    """The run is read from, and the report written to, an fsspec URL (memory://)."""
    fs = fsspec.filesystem("memory")
    root = f"/quality-{uuid.uuid4().hex[:8]}"
    try:
        fs.put(str(synthetic_run.run), root, recursive=True)
        remote = build_report(f"memory://{root}")
        local = clean.result
        assert remote.outcome == "pass"
        assert remote.report == f"memory://{root}/report/index.html"
        assert [(e.id, e.observed) for e in remote.expectations] == [
            (e.id, e.observed) for e in local.expectations]
        assert fs.exists(f"{root}/report/index.html")
        assert fs.exists(f"{root}/report/report.json")
        pages = [e.data_docs for e in remote.expectations]
        assert all(fs.exists(f"{root}/report/{page}") for page in pages)
    finally:
        fs.rm(root, recursive=True)


def test_great_expectations_and_matplotlib_are_imported_lazily():
    code = ("import sys, claimdiff.cli, claimdiff.quality, claimdiff.quality.report, "
            "claimdiff.quality.frames; from claimdiff.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('great_expectations', 'matplotlib', 'pandas') "
            "if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"


def test_hostile_run_ids_stay_inside_the_report_and_inert(synthetic_run, tmp_path):
    """run.json and the shards are untrusted: a run id with path parts and markup neither
    escapes the report folder (GE builds Data Docs paths from the run name) nor renders."""
    run = copy_run(synthetic_run.run, tmp_path / "runs" / "run")
    hostile = "../../<u>x</u>"
    for dataset in ("differences", "rewards", "failures"):
        rewrite_rows(run, dataset, lambda rows: [r.update(run_id=hostile) for r in rows] and None)
    edit_run_json(run, lambda manifest: manifest.update(run_id=hostile))
    result = build_report(str(run))
    assert result.outcome == "pass"
    assert result.run_id == hostile
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    pages = [p for p in (run / "report").rglob("*.html")]
    assert len(pages) > 10
    assert not [p for p in pages if "<u>" in p.read_text()]
    assert "&lt;u&gt;x&lt;/u&gt;" in (run / "report" / "index.html").read_text()
