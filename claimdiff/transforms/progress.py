"""Progress of a run while it runs: rows read, judged and failed, and the rate.

Beam's own metrics are the run's counters of record (`run.json`, and live in the Dataflow UI),
but the local runners report them only when the pipeline has finished. So `CountProgress`, a
side branch of the graph that outputs nothing, also adds each element to a per-run tally in
the process that runs the bundle: one locked integer addition per row, beside work that takes
milliseconds per row. A `ProgressReporter` thread in the launching process reads that tally
every `every_s` seconds and writes one line: rewritten in place on a terminal, a plain log
line otherwise (a scheduler's log). The tally lives in the launching process only with the
in-process runner (`--runner-preset local`); with worker processes or a remote runner the
reporter says so once, and Beam's counters are the place to look.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO

import apache_beam as beam

KINDS = ("read", "judged", "failed")


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.counts[kind] += n

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


_TALLIES: dict[str, Tally] = {}
_TALLIES_LOCK = threading.Lock()


def tally(run_id: str) -> Tally:
    with _TALLIES_LOCK:
        return _TALLIES.setdefault(run_id, Tally())


def forget(run_id: str) -> None:
    with _TALLIES_LOCK:
        _TALLIES.pop(run_id, None)


class _Count(beam.DoFn):
    def __init__(self, run_id: str, kind: str) -> None:
        self._run_id = run_id
        self._kind = kind
        self._tally: Tally | None = None

    def setup(self) -> None:
        self._tally = tally(self._run_id)

    def process(self, element: object) -> None:
        assert self._tally is not None
        self._tally.add(self._kind)


class CountProgress(beam.PTransform):
    """{"read": rows, "judged": rows, "failed": rows} -> nothing; tallies them as they pass
    (`"read/failures"`: another collection that counts as `read`)."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self._run_id = run_id

    def expand(self, collections: Mapping[str, beam.PCollection]) -> None:
        for key, rows in sorted(collections.items()):
            kind = key.split("/", 1)[0]
            label = "".join(part.capitalize() for part in key.split("/"))
            _ = rows | f"Count{label}" >> beam.ParDo(_Count(self._run_id, kind))


def progress_line(counts: Mapping[str, int], elapsed_s: float) -> str:
    """
    >>> progress_line({"read": 120, "judged": 90, "failed": 6}, 30.0)
    'progress: 120 rows read, 90 judged, 6 failed (3.2 rows/s judged or failed) after 30 s'
    """
    done = counts["judged"] + counts["failed"]
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    return (f"progress: {counts['read']} rows read, {counts['judged']} judged, "
            f"{counts['failed']} failed ({rate:.1f} rows/s judged or failed) after "
            f"{elapsed_s:.0f} s")


class ProgressReporter:
    """Writes a progress line every `every_s` seconds while a run runs (use as a context
    manager around the run). `tick()` writes one line now: the thread calls it, and so can a
    test, with its own clock."""

    def __init__(self, run_id: str, *, every_s: float = 30.0, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic, live: bool = True) -> None:
        self._run_id = run_id
        self._every_s = every_s
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._live = live
        self._terminal = bool(getattr(self._stream, "isatty", lambda: False)())
        self._started = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lines: list[str] = []

    def tick(self) -> str:
        line = progress_line(tally(self._run_id).snapshot(), self._clock() - self._started)
        self.lines.append(line)
        if self._terminal:
            self._stream.write("\r\x1b[2K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
        return line

    def __enter__(self) -> ProgressReporter:
        tally(self._run_id)
        if not self._live:
            self._stream.write("progress: this runner reports its counters when it ends (and "
                               "live in its own UI, e.g. Dataflow's)\n")
            return self
        if self._every_s > 0:
            def beat() -> None:
                while not self._stop.wait(self._every_s):
                    self.tick()

            self._thread = threading.Thread(target=beat, name="claimdiff-progress",
                                             daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._live and self._terminal:
            self._stream.write("\n")
        forget(self._run_id)
