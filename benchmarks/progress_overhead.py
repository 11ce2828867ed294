"""What the live progress tallies cost: the judge pipeline with its `Progress` branch against
the same pipeline without it (`labels` judge, no model, so the overhead is as visible as it
can be).

    python benchmarks/progress_overhead.py [--images 100] [--actors 4] [--repeats 4]

Runs alternate (with, without, with, ...) so a noisy shared machine slows both alike; prints
medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import apache_beam as beam

import claimdiff.pipelines.judge as judge_pipeline
from claimdiff.config import load_config
from claimdiff.pipelines.judge import JudgeJob, run_judge
from claimdiff.runners.options import pipeline_options
from claimdiff.synth.sample import write_sample
from claimdiff.transforms.progress import CountProgress


class _NoProgress(beam.PTransform):
    def __init__(self, run_id: str) -> None:
        super().__init__()

    def expand(self, collections: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    manifest = write_sample(str(root / "data"), images=args.images, actors=args.actors, seed=0,
                            broken=False)
    times: dict[str, list[float]] = {"with progress": [], "without": []}
    rows = 0
    for i in range(args.repeats):
        for name, transform in (("with progress", CountProgress), ("without", _NoProgress)):
            judge_pipeline.CountProgress = transform  # type: ignore[misc, assignment]
            started = time.perf_counter()
            result = run_judge(JudgeJob(manifest=manifest, output=str(root / f"{i}-{name}"),
                                        config=load_config(None)), pipeline_options([]))
            times[name].append(time.perf_counter() - started)
            rows = result.accounting.rows_in
    base = statistics.median(times["without"])
    print("| pipeline | rows | median s | runs (s) | x without |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {rows} | {median:.2f} | {runs} | {median / base:.3f} |")


if __name__ == "__main__":
    main()
