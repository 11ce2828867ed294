"""The report in a real headless Chromium: it renders without console errors, fetches nothing
from the network, shows its plots and its pass/fail table, and its Data Docs links work.

Needs Debian's `chromium` (`make test` installs it when missing, see scripts/ensure_chromium.sh);
without it the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claimdiff.quality import build_report
from tests.quality_support import copy_run, rewrite_rows
from tests.support.browser import chromium_path, headless_chromium

pytestmark = pytest.mark.slow

SCREENSHOT = "report-screenshot.png"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        message = "Debian's chromium is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: the browser test must run in CI")
        pytest.skip(message)
    return path


def test_the_detector_sees_console_errors_and_network_fetches(chromium, tmp_path):
    """The checks below can fail: a page that logs an error and fetches from the web."""
    page = tmp_path / "bad.html"
    page.write_text('<!doctype html><html><body><img src="https://example.invalid/x.png">'
                    '<script>console.error("broken")</script><script>undefinedThing()</script>'
                    "</body></html>")
    with headless_chromium(chromium) as browser:
        _, visit = browser.visit(page.as_uri())
    # the refused fetch shows as a console error too
    assert sorted(visit.console_errors) == ["Failed to load resource: net::ERR_FAILED", "broken"]
    assert any("undefinedThing" in error for error in visit.page_errors)
    assert visit.remote_requests == ["https://example.invalid/x.png"]


def test_the_report_in_a_headless_browser(chromium, synthetic_run, tmp_path, record_property):
    clean = build_report(str(synthetic_run.run), out=str(tmp_path / "clean"), by="edit")
    run = copy_run(synthetic_run.run, tmp_path / "run")
    hostile = '<img src=x onerror="console.error(1)"><script>console.error(2)</script>'

    def plant(rows):
        rows[0].update(confidence=7.0)
        rows[1].update(judgment=hostile)  # untrusted text that reaches both pages
    rewrite_rows(run, "differences", plant)
    breached = build_report(str(run))
    screenshot = tmp_path / SCREENSHOT
    with headless_chromium(chromium) as browser:
        page, visit = browser.visit((tmp_path / "clean" / "index.html").as_uri(),
                                    screenshot=screenshot)
        assert visit.problems == []
        assert page.get_attribute("#outcome", "data-outcome") == "pass"
        plots = page.eval_on_selector_all(
            "figure.plot", "figures => figures.map(f => [f.id, f.querySelector('img')"
            ".naturalWidth, f.querySelector('img').src.slice(0, 22)])")
        assert [p[0] for p in plots] == ["plot-outcomes-by-type", "plot-severity",
                                         "plot-hallucination-omission", "plot-rewards",
                                         "plot-lambda-frontier"]
        assert all(width > 100 and src == "data:image/png;base64," for _, width, src in plots)
        rows = page.eval_on_selector_all(
            "table.expectations tr[data-expectation-id]",
            "rows => rows.map(r => [r.dataset.expectationId, r.dataset.success, "
            "r.querySelector('td.result').textContent])")
        assert sorted(r[0] for r in rows) == sorted(e.id for e in clean.expectations)
        assert {(r[1], r[2]) for r in rows} == {("true", "PASS")}
        link = page.eval_on_selector("#exp-health\\.failure_share a", "a => a.href")
        docs, docs_visit = browser.visit(link)
        assert docs_visit.problems == []
        assert "claimdiff.rows" in docs.inner_text("body")

        page, visit = browser.visit(Path(breached.report or "").as_uri())
        assert visit.problems == []
        assert page.get_attribute("#outcome", "data-outcome") == "breached"
        failing = page.eval_on_selector_all("tr[data-success='false']",
                                            "rows => rows.map(r => r.dataset.expectationId)")
        assert failing == breached.failed == ["differences.judgment.in_set",
                                              "differences.confidence.range"]
        assert hostile in page.inner_text("#exp-differences\\.judgment\\.in_set")
        docs, docs_visit = browser.visit(page.eval_on_selector(
            "#exp-differences\\.judgment\\.in_set a", "a => a.href"))
        assert docs_visit.problems == []
        assert docs.eval_on_selector_all("img[src='x']", "images => images.length") == 0
        assert page.eval_on_selector_all("#breached a", "links => links.map(a => a.hash)") == [
            "#exp-differences.judgment.in_set", "#exp-differences.confidence.range"]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record_property("screenshot", str(screenshot))  # kept in pytest's tmp folder
