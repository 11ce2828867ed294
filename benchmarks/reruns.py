"""B4 reruns: a rerun of an unchanged corpus with `--reuse`, against the first run.

The first run judges every row; the rerun reuses its answers by cache key. Reported: judge
calls of each (the rerun must make none) and the rerun's wall time relative to the first run
(target ≤ 10%). The judge is the `labels` backend, with a fixed pause per request standing in
for a GPU judge's latency (`--judge-ms`; 0 shows the pipeline's own floor: reading, hashing and
decoding images, Beam start-up, writing). Both runs go through `run_judge`, as `claimdiff
judge` does.

    python -m benchmarks.reruns [--quick] [--rows-per-image N] [--judge-ms MS]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import Report, parser
from claimdiff.config import load_config
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.judges.backends.labels import LabelsBackend
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.pipelines.judge import JudgeJob, run_judge
from claimdiff.runners.options import pipeline_options
from claimdiff.synth import write_synthetic


class PausedLabels:
    """The labels judge, `pause_s` per request (a GPU judge's share of a batch), counting the
    first-pass requests it answers in a file (it runs in Beam's workers)."""

    def __init__(self, log: Path, pause_s: float) -> None:
        self._log = log
        self._pause_s = pause_s
        self._labels = LabelsBackend()

    @property
    def model_id(self) -> str:
        return self._labels.model_id

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        time.sleep(self._pause_s * len(requests))
        with self._log.open("a") as handle:
            handle.write("x" * len(requests))
        return self._labels.judge(requests, decoding)


def judged(log: Path) -> int:
    return len(log.read_text()) if log.exists() else 0


def one_run(manifest: str, output: Path, log: Path, pause_s: float,
            reuse: tuple[str, ...]) -> tuple[float, int, dict[str, int]]:
    def factory(setup: JudgeSetup) -> PausedLabels:
        return PausedLabels(log, pause_s)

    job = JudgeJob(manifest=manifest, output=str(output), config=load_config(None),
                   backend_factory=factory, reuse=reuse)
    started = time.perf_counter()
    result = run_judge(job, pipeline_options([], "local", None))
    seconds = time.perf_counter() - started
    assert result.status == "ok", result.status
    return seconds, judged(log), result.counters


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=None, help="synthetic scenes (default 40)")
    p.add_argument("--judge-ms", type=float, nargs="+", default=[0.0, 50.0],
                   help="pause per judged row, in ms (one table row each)")
    args = p.parse_args(argv)
    images = args.images or (6 if args.quick else 40)
    repeats = args.repeats or (1 if args.quick else 3)
    report = Report("reruns", {"quick": args.quick, "images": images, "repeats": repeats},
                    ["judge ms/row", "rows", "first s", "rerun s", "rerun / first",
                     "first calls", "rerun calls"])
    with tempfile.TemporaryDirectory(prefix="claimdiff-b4-") as tmp:
        root = Path(tmp)
        manifest = write_synthetic(str(root / "data"), n=images, seed=0)
        for judge_ms in args.judge_ms:
            firsts, reruns, calls = [], [], (0, 0)
            rows = 0
            for repeat in range(repeats):
                base = root / f"{judge_ms}-{repeat}"
                first_s, first_calls, counters = one_run(
                    manifest, base / "first", base / "first.log", judge_ms / 1000, ())
                rerun_s, rerun_calls, _ = one_run(
                    manifest, base / "rerun", base / "rerun.log", judge_ms / 1000,
                    (str(base / "first"),))
                firsts.append(first_s)
                reruns.append(rerun_s)
                calls = (first_calls, rerun_calls)
                rows = counters.get("claimdiff.manifest/rows_read", first_calls)
            first, rerun = sorted(firsts)[len(firsts) // 2], sorted(reruns)[len(reruns) // 2]
            report.add(**{"judge ms/row": judge_ms, "rows": rows, "first s": first,
                          "rerun s": rerun, "rerun / first": rerun / first,
                          "first calls": calls[0], "rerun calls": calls[1]})
            report.target(f"rerun judge calls at {judge_ms:g} ms/row", calls[1], 0,
                          higher_is_better=False)
            report.target(f"rerun / first at {judge_ms:g} ms/row", rerun / first, 0.10,
                          higher_is_better=False)
    report.notes.append(
        "A reused row still has its image read, hashed and decoded (the key needs the "
        "image's sha256, and LoadImages decodes as it reads): at 0 ms/row that, Beam's "
        "start-up and the writes are the whole cost of both runs.")
    report.finish(args.json)


if __name__ == "__main__":
    main()

