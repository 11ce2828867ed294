"""Progress lines come from the run's own tallies, fed as rows pass (no timing in the tests:
the clock is the test's, and the test asks for each line)."""

from __future__ import annotations

import io
from pathlib import Path

from claimdiff.synth.sample import write_sample
from claimdiff.transforms.progress import ProgressReporter, tally
from tests.pipeline_support import run


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_in_a_log_and_in_place_on_a_terminal():
    clock, log = _Clock(), io.StringIO()
    with ProgressReporter("r-log", every_s=0, stream=log, clock=clock) as reporter:
        tally("r-log").add("read", 50)
        tally("r-log").add("judged", 36)
        tally("r-log").add("failed", 4)
        clock.now += 20
        reporter.tick()
    assert log.getvalue() == (
        "progress: 50 rows read, 36 judged, 4 failed (2.0 rows/s judged or failed) after 20 s\n")
    terminal = _Terminal()
    with ProgressReporter("r-tty", every_s=0, stream=terminal, clock=clock) as reporter:
        reporter.tick()
        tally("r-tty").add("read")
        reporter.tick()
    assert terminal.getvalue().count("\r\x1b[2K") == 2
    assert terminal.getvalue().endswith("1 rows read, 0 judged, 0 failed (0.0 rows/s judged or "
                                        "failed) after 0 s\n")
    assert tally("r-log").snapshot()["read"] == 0  # each run's tally ends with the run


def test_a_runner_without_live_counters_says_so_once():
    log = io.StringIO()
    with ProgressReporter("r-remote", every_s=0.01, stream=log, live=False):
        pass
    assert log.getvalue().count("\n") == 1
    assert "reports its counters when it ends" in log.getvalue()


def test_the_tally_of_a_run_is_its_accounting(tmp_path: Path):
    manifest = write_sample(str(tmp_path / "data"), images=3, actors=2, seed=5)
    clock, log = _Clock(), io.StringIO()
    with ProgressReporter("r-run", every_s=0, stream=log, clock=clock) as reporter:
        result = run(manifest, tmp_path / "out", {"run.max_failure_share": 0.9}, run_id="r-run")
        line = reporter.tick()
    acc = result.accounting
    assert acc.rows_failed > 0
    assert line.startswith(f"progress: {acc.rows_in} rows read, {acc.rows_judged} judged, "
                           f"{acc.rows_failed} failed")
