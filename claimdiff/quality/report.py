"""`claimdiff report`: check a run's outputs, and write `report/` (index.html, Data Docs, JSON).

    from claimdiff.quality import assess, build_report
    result = assess("out/run1").result            # validate only: nothing is written
    result = build_report("out/run1", baseline="out/run0")   # writes out/run1/report/
    result.outcome, result.exit_code, result.failed

Outcomes and exit codes (for schedulers): `pass` 0, `breached` 4 (at least one expectation
failed), `unreadable` 5 (`UnreadableRunError`: no run.json, a missing dataset, a shard that is
not Parquet). Usage and configuration errors exit 2, as everywhere in the CLI.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from claimdiff.errors import ConfigError, UnreadableRunError
from claimdiff.io.datasets import filesystem, join
from claimdiff.quality import drift
from claimdiff.quality.config import QualityConfig
from claimdiff.quality.expectations import (
    SUITE_VERSION,
    CheckContext,
    build_suite,
    schema_sha256,
)
from claimdiff.quality.frames import RunData, metrics_frame, read_run
from claimdiff.quality.html import render_index
from claimdiff.quality.results import (
    EXIT_CODES,
    EXIT_UNREADABLE,
    ExpectationResult,
    QualityResult,
    ReportOutcome,
)
from claimdiff.quality.validate import CheckResult, run_checks

REPORT_FOLDER = "report"
REPORT_JSON = "report.json"
INDEX_HTML = "index.html"
DATA_DOCS = "data_docs"


def unreadable(run: str, error: UnreadableRunError) -> QualityResult:
    return QualityResult(outcome=ReportOutcome.UNREADABLE, exit_code=EXIT_UNREADABLE, run=run,
                         error=str(error))


@dataclass
class Assessment:
    data: RunData
    results: list[CheckResult]
    result: QualityResult
    drift: dict[str, Any] | None = None


def _summary(data: RunData) -> dict[str, Any]:
    run = data.run
    acc = run.accounting
    return {
        "status": run.status, "manifest": run.manifest, "judge_backend": run.judge_backend,
        "judge_model": run.judge_model, "prompt_name": run.prompt_name,
        "prompt_version": run.prompt_version, "code_version": run.code_version,
        "started_at": run.started_at, "finished_at": run.finished_at,
        "duration_s": run.duration_s, "timings": run.timings,
        "rows_in": acc.rows_in, "rows_judged": acc.rows_judged, "rows_failed": acc.rows_failed,
        "differences": acc.differences, "failure_share": run.failure_share,
        "max_failure_share": run.max_failure_share, "failures_by_stage": acc.failures_by_stage,
        "failures_by_reason": acc.failures_by_reason, "shards": data.shards,
        "accounting_run_json": acc.model_dump(),
        "accounting_shards": data.recomputed.model_dump() if data.recomputed else None,
        "judge_stats": run.judge_stats, "presets": data.presets, "primary": data.primary,
    }


def assess(run: str, *, baseline: str | None = None, config: QualityConfig | None = None,
           docs_dir: Path | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
           ) -> Assessment:
    """Read a run (and a baseline), build its suite, and validate it with Great Expectations.

    Raises `UnreadableRunError` for a run or baseline that cannot be read, `ConfigError` for a
    suite extension Great Expectations cannot build.
    """
    config = config or QualityConfig()
    thresholds = config.thresholds
    data = read_run(run, stages=[s.value for s in thresholds.max_failure_share_by_stage],
                    reasons=list(thresholds.max_failure_share_by_reason))
    drift_detail = None
    if baseline is not None:
        try:
            base = read_run(baseline)
        except UnreadableRunError as exc:
            raise UnreadableRunError(f"baseline {baseline}: {exc}") from exc
        metrics, skipped, drift_detail = drift.compare(data, base, config.drift)
        data.metrics += metrics
        data.skipped += skipped
    data.frames["metrics"] = metrics_frame(data.metrics)
    context = CheckContext(
        run_id=data.run.run_id, run_max_failure_share=data.run.max_failure_share,
        presets=data.presets, primary=data.primary, unusable=data.unusable, empty=data.empty,
        metrics=[name for name, _ in data.metrics], skipped=data.skipped,
        frames=set(data.frames))
    checks, skipped, notes = build_suite(context, config)
    results = run_checks(data.frames, checks, run_name=data.run.run_id, docs_dir=docs_dir,
                         suite_label=config.suite_label)
    values = dict(data.metrics)
    for r in results:
        # a metric check sees one row: its value says more than "0 of 1 unexpected"
        if r.check.frame == "metrics" and r.check.id in values and r.error is None:
            r.observed = f"{values[r.check.id]:.4g}"
    failed = [r.check.id for r in results if not r.success]
    outcome = ReportOutcome.BREACHED if failed else ReportOutcome.PASS
    result = QualityResult(
        outcome=outcome, exit_code=EXIT_CODES[outcome], run=data.output,
        run_id=data.run.run_id, created_at=clock().isoformat(), run_summary=_summary(data),
        suite={"version": SUITE_VERSION, "schema_sha256": schema_sha256(),
               "label": config.suite_label,
               "config_sha256": _config_sha256(config), "expectations": len(results)},
        passed=len(results) - len(failed), failed=failed,
        expectations=[ExpectationResult(
            id=r.check.id, family=r.check.family, table=r.check.frame, type=r.check.type,
            description=r.check.description, threshold=r.check.threshold, success=r.success,
            observed=r.observed, unexpected=r.unexpected, error=r.error,
            data_docs=f"{DATA_DOCS}/{r.docs_page}" if r.docs_page else None) for r in results],
        not_computed=skipped, notes=notes, baseline=baseline, drift=drift_detail)
    return Assessment(data=data, results=results, result=result, drift=drift_detail)


def _config_sha256(config: QualityConfig) -> str:
    import hashlib

    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _is_previous_report(fs: Any, root: str) -> bool:
    return bool(fs.exists(join(root, REPORT_JSON)) or (
        fs.exists(join(root, INDEX_HTML)) and fs.exists(join(root, DATA_DOCS))))


def _check_out(out: str) -> bool:
    """Whether `out` holds a previous report (to replace); refuse a folder with anything else."""
    fs, root = filesystem(out)
    if not fs.exists(root):
        return False
    if not fs.isdir(root):
        raise ConfigError(f"report folder {out} is a file")
    if _is_previous_report(fs, root):
        return True
    if fs.ls(root):
        raise ConfigError(f"{out} exists and is not a claimdiff report; choose another --out")
    return False


def _upload(local: Path, out: str) -> None:
    fs, root = filesystem(out)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        target = join(root, *path.relative_to(local).parts)
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(target, "wb") as handle:
            handle.write(path.read_bytes())


def build_report(run: str, *, out: str | None = None, baseline: str | None = None,
                 config: QualityConfig | None = None, by: str = "actor_id") -> QualityResult:
    """`assess`, then write the report: index.html (self-contained), report.json, data_docs/.

    `out` defaults to the run's own `report/` folder; any fsspec URL works (the report is
    built in a local temporary folder and copied there).
    """
    from claimdiff.quality.datadocs import make_offline
    from claimdiff.quality.plots import render_plots

    run = run.rstrip("/")
    out = (out or join(run, REPORT_FOLDER)).rstrip("/")
    _check_out(out)  # before the work: a wrong --out is a usage error at once
    with tempfile.TemporaryDirectory(prefix="claimdiff-report-") as tmp:
        local = Path(tmp)
        assessment = assess(run, baseline=baseline, config=config, docs_dir=local / DATA_DOCS)
        make_offline(local / DATA_DOCS)
        plots, plot_notes = render_plots(assessment.data, by=by)
        result = assessment.result.model_copy(update={
            "report": join(out, INDEX_HTML), "notes": [*assessment.result.notes, *plot_notes]})
        (local / INDEX_HTML).write_text(render_index(result, plots, plot_notes), encoding="utf-8")
        (local / REPORT_JSON).write_text(result.model_dump_json(indent=2) + "\n",
                                         encoding="utf-8")
        # a failed or unreadable run leaves the previous report alone; a finished one replaces it
        if _check_out(out):
            fs, root = filesystem(out)
            fs.rm(root, recursive=True)
        _upload(local, out)
    return result
