"""`report/index.html`: the page a person opens first. One file, nothing fetched at view time.

Plots are PNG data URIs, the style is inline, there is no script, and a Content-Security-Policy
forbids every fetch, so a page opened from object storage, an archive or an air-gapped machine
looks the same. Everything that comes from the run (ids, reasons, observed values, captions in
unexpected values) is HTML-escaped: runs are untrusted. Links into Data Docs are relative.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from html import escape
from typing import TYPE_CHECKING, Any

from claimdiff.quality.expectations import FAMILIES
from claimdiff.quality.plots import Plot

if TYPE_CHECKING:
    from claimdiff.quality.results import ExpectationResult, QualityResult

_FOLD_AFTER = 12

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; " \
      "form-action 'none'"

STYLE = """
:root { --ok: #1f7a35; --bad: #a5171d; --line: #d5dbe3; --muted: #5b6575; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1d2330; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
header { padding: 1rem 1.5rem; color: white; }
header.pass { background: var(--ok); } header.breached { background: var(--bad); }
header h1 { margin: 0; font-size: 1.4rem; } header p { margin: 0.25rem 0 0; }
h2 { margin-top: 2rem; border-bottom: 1px solid var(--line); padding-bottom: 0.25rem; }
table { border-collapse: collapse; background: white; width: 100%; }
th, td { border: 1px solid var(--line); padding: 0.3rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #eef1f5; }
table.kv { width: auto; } table.kv th { font-weight: 600; white-space: nowrap; }
td.result { font-weight: 700; white-space: nowrap; }
tr.pass td.result { color: var(--ok); } tr.fail td.result { color: var(--bad); }
tr.fail { background: #fdf0f0; }
code { font-size: 0.92em; word-break: break-all; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
        gap: 1rem; }
figure { margin: 0; background: white; border: 1px solid var(--line); padding: 0.5rem; }
figure h3 { margin: 0 0 0.3rem; font-size: 1rem; }
.two { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.5rem; }
details { margin: 0.6rem 0; } summary { cursor: pointer; padding: 0.3rem 0; }
#families { margin-bottom: 0.5rem; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.9em; }
.muted { color: var(--muted); }
ul.breached a { color: var(--bad); }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _kv(rows: list[tuple[str, Any]], table_id: str) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv" id="{table_id}">{body}</table>'


def _counts(mapping: dict[str, Any] | None) -> str:
    if not mapping:
        return '<span class="muted">none</span>'
    return ", ".join(f"{_e(k)} {_e(v)}" for k, v in mapping.items())


def _summary(result: QualityResult) -> str:
    s = result.run_summary
    timings = ", ".join(f"{_e(k)} {_e(v)} s" for k, v in (s.get("timings") or {}).items())
    rows = [
        ("run", f"<code>{_e(result.run)}</code>"),
        ("run id", f"<code>{_e(result.run_id)}</code> ({_e(s.get('status'))})"),
        ("manifest", f"<code>{_e(s.get('manifest'))}</code>"),
        ("judge", f"{_e(s.get('judge_backend'))}: <code>{_e(s.get('judge_model'))}</code>"),
        ("prompt", f"{_e(s.get('prompt_name'))} <code>{_e(s.get('prompt_version'))}</code>"),
        ("code version", f"<code>{_e(s.get('code_version'))}</code>"),
        ("started / finished", f"{_e(s.get('started_at'))} / {_e(s.get('finished_at'))}"),
        ("duration", f"{_e(s.get('duration_s'))} s ({timings})"),
        ("rows", f"in {_e(s.get('rows_in'))} = judged {_e(s.get('rows_judged'))} + failed "
                 f"{_e(s.get('rows_failed'))}; failure share {_e(s.get('failure_share'))} "
                 f"(run max {_e(s.get('max_failure_share'))})"),
        ("differences", _e(s.get("differences"))),
        ("failures by stage", _counts(s.get("failures_by_stage"))),
        ("failures by reason", _counts(s.get("failures_by_reason"))),
        ("shards", _counts(s.get("shards"))),
        ("reward presets", ", ".join(_e(p) for p in s.get("presets") or [])
         + (f" (primary {_e(s.get('primary'))})" if s.get("primary") else "")),
        ("judge stats", _counts({k: (f"{v:.4g}" if isinstance(v, float) else v)
                                 for k, v in (s.get("judge_stats") or {}).items()})),
    ]
    return _kv(rows, "run-summary")


def _accounting(result: QualityResult) -> str:
    written = result.run_summary.get("accounting_run_json") or {}
    recomputed = result.run_summary.get("accounting_shards")
    if recomputed is None:
        return '<p class="muted">The shards could not be accounted.</p>'
    rows = []
    for name, value in written.items():
        other = recomputed.get(name)
        same = json.dumps(value, sort_keys=True) == json.dumps(other, sort_keys=True)
        rows.append(f'<tr class="{"pass" if same else "fail"}"><th>{_e(name)}</th>'
                    f"<td>{_e(json.dumps(value, sort_keys=True))}</td>"
                    f"<td>{_e(json.dumps(other, sort_keys=True))}</td></tr>")
    return ('<table id="accounting"><thead><tr><th>quantity</th><th>run.json</th>'
            f'<th>recomputed from the shards</th></tr></thead><tbody>{"".join(rows)}'
            "</tbody></table>")


def _plots(plots: list[Plot], notes: list[str]) -> str:
    figures = []
    for plot in plots:
        data = base64.b64encode(plot.png).decode("ascii")
        figures.append(f'<figure id="plot-{_e(plot.id)}" class="plot">'
                       f"<h3>{_e(plot.title)}</h3>"
                       f'<img alt="{_e(plot.title)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{_e(plot.caption)}</figcaption></figure>")
    missing = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return (f'<div class="grid" id="plots">{"".join(figures)}</div>'
            + (f'<ul class="muted" id="plot-notes">{missing}</ul>' if missing else ""))


def _expectation_row(item: ExpectationResult) -> str:
    status = "pass" if item.success else "fail"
    docs = (f'<a href="{_e(item.data_docs)}">Data Docs</a>' if item.data_docs
            else '<span class="muted">-</span>')
    return (f'<tr id="exp-{_e(item.id)}" class="{status}" data-expectation-id="{_e(item.id)}" '
            f'data-success="{str(item.success).lower()}">'
            f'<td class="result">{status.upper()}</td><td><code>{_e(item.id)}</code></td>'
            f"<td>{_e(item.description)}</td><td>{_e(item.threshold or '')}</td>"
            f"<td>{_e(item.observed)}</td><td>{docs}</td></tr>")


def _expectations(result: QualityResult) -> str:
    """One table per family; a family whose expectations all pass starts folded when long."""
    skipped: Counter[str] = Counter(s.family for s in result.not_computed)
    families: dict[str, list[ExpectationResult]] = {
        f: [] for f in FAMILIES if f in skipped or any(i.family == f for i in result.expectations)}
    for item in result.expectations:
        families[item.family].append(item)
    overview = "".join(
        f'<tr class="{"fail" if any(not i.success for i in items) else "pass"}">'
        f'<th><a href="#family-{_e(family)}">{_e(family)}</a></th>'
        f"<td>{sum(i.success for i in items)}</td><td>{sum(not i.success for i in items)}</td>"
        f"<td>{skipped.get(family, 0)}</td></tr>" for family, items in families.items())
    parts = ['<table id="families" class="kv"><thead><tr><th>family</th><th>passed</th>'
             f"<th>breached</th><th>not computed</th></tr></thead><tbody>{overview}</tbody>"
             "</table>"]
    for family, items in families.items():
        if not items:
            continue
        failed = sum(not i.success for i in items)
        folded = not failed and len(items) > _FOLD_AFTER
        rows = "".join(_expectation_row(i) for i in items)
        parts.append(
            f'<details id="family-{_e(family)}"{"" if folded else " open"}><summary>'
            f"<b>{_e(family)}</b>: {len(items) - failed} passed"
            f"{f', {failed} breached' if failed else ''}</summary>"
            f'<table class="expectations" data-family="{_e(family)}"><thead><tr>'
            "<th>result</th><th>id</th><th>expectation</th><th>threshold</th><th>observed</th>"
            f"<th>details</th></tr></thead><tbody>{rows}</tbody></table></details>")
    return "".join(parts)


def _not_computed(result: QualityResult) -> str:
    if not result.not_computed:
        return ""
    items = "".join(f"<li><code>{_e(s.id)}</code> ({_e(s.family)}): {_e(s.reason)}</li>"
                    for s in result.not_computed)
    return f'<h3>Not computed</h3><ul id="not-computed">{items}</ul>'


def _drift(result: QualityResult) -> str:
    if not result.drift:
        return ""
    parts = [f"<p>Baseline <code>{_e(result.baseline)}</code> (run "
             f"<code>{_e(result.drift.get('baseline_run_id'))}</code>). Distance: total "
             "variation (half the L1 distance of the shares).</p>"]
    for metric in ("drift.canonical_type", "drift.severity"):
        detail = result.drift.get(metric)
        if not detail:
            continue
        names = list(detail["run"])
        head = "".join(f"<th>{_e(n)}</th>" for n in names)
        run_row = "".join(f"<td>{_e(detail['run'][n])}</td>" for n in names)
        base_row = "".join(f"<td>{_e(detail['baseline'].get(n, 0))}</td>" for n in names)
        distance = detail.get("distance")
        parts.append(
            f"<h3>{_e(metric)}"
            + (f" — distance {distance:.3f}" if isinstance(distance, float) else "") + "</h3>"
            f'<table class="drift"><tr><th></th>{head}</tr><tr><th>run</th>{run_row}</tr>'
            f"<tr><th>baseline</th>{base_row}</tr></table>")
    means = result.drift.get("reward_means") or {}
    names = sorted(set(means.get("run", {})) | set(means.get("baseline", {})))
    if names:
        rows = "".join(
            f"<tr><th>{_e(n)}</th><td>{_e(_fmt(means.get('run', {}).get(n)))}</td>"
            f"<td>{_e(_fmt(means.get('baseline', {}).get(n)))}</td></tr>" for n in names)
        parts.append("<h3>Mean reward per preset</h3><table class='drift'><tr><th>preset</th>"
                     f"<th>run</th><th>baseline</th></tr>{rows}</table>")
    return '<h2 id="drift">Drift against the baseline</h2>' + "".join(parts)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def render_index(result: QualityResult, plots: list[Plot], missing_plots: list[str]) -> str:
    """The whole page; `missing_plots` says which plots the run has no data for."""
    total = len(result.expectations)
    outcome = result.outcome.value
    failed = "".join(f'<li><a href="#exp-{_e(i)}"><code>{_e(i)}</code></a></li>'
                     for i in result.failed)
    other_notes = [n for n in result.notes if n not in missing_plots]
    suite = result.suite
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>claimdiff report {_e(result.run_id)}: {outcome}</title>
<style>{STYLE}</style></head>
<body>
<header class="{outcome}"><h1>claimdiff quality report — <code>{_e(result.run_id)}</code></h1>
<p id="outcome" data-outcome="{outcome}">{outcome.upper()}: {result.passed} of {total}
expectations met{f", {len(result.failed)} breached" if result.failed else ""};
exit code {result.exit_code}</p></header>
<main>
{f'<h2>Breached</h2><ul class="breached" id="breached">{failed}</ul>' if failed else ""}
<div class="two"><section><h2>Run</h2>
{_summary(result)}</section>
<section><h2>Accounting</h2>
{_accounting(result)}</section></div>
<h2>Plots</h2>
{_plots(plots, missing_plots)}
<h2>Expectations</h2>
<p class="muted">Suite version {_e(suite.get("version"))}, schema
<code>{_e(str(suite.get("schema_sha256", ""))[:12])}</code>{
f", extensions {_e(suite.get('label'))}" if suite.get("label") else ""}; details of every
expectation in the <a href="data_docs/index.html">Great Expectations Data Docs</a>.</p>
{_expectations(result)}
{_not_computed(result)}
{"".join(f'<p class="muted">{_e(n)}</p>' for n in other_notes)}
{_drift(result)}
<p class="muted">Written {_e(result.created_at)} by claimdiff report (report format
{result.report_version}).</p>
</main></body></html>
"""
