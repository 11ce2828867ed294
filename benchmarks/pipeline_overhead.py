"""B1: what the Beam pipeline costs over a plain loop doing the same work with the same judge.

    python -m benchmarks.pipeline_overhead [--quick] [--images 200] [--actors 4] [--repeats 3]
                                           [--judges labels transformers]

Both sides do the same work per row: validate, read + hash + decode each image once, render the
prompt, judge in batches of `judge.max_batch_size` (`judge_batch`, the pipeline's own call),
derive outcomes, statistics and rewards, and write zstd Parquet. The plain side does it in one
Python loop; the Beam sides run the real pipeline (`run_judge`, what `claimdiff judge` runs:
in-process FnApiRunner, and worker processes). Two judges: `labels` (no model: the pipeline's
own cost per row) and `transformers` on the tests' tiny random-weight LLaVA on CPU (a model in
the loop; both sides load it once, inside the timing). Prints medians and the ratio to the
plain loop, measured in the same run because these machines are shared and noisy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.harness import Report, interleaved, median, parser
from claimdiff.config import ClaimdiffConfig, load_config
from claimdiff.io.images import LoadedImage, load_image
from claimdiff.io.manifest import iter_manifest, validate_row
from claimdiff.judges.backends.factory import build_backend
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.loop import judge_batch
from claimdiff.judges.records import JudgeItem
from claimdiff.pipelines.judge import JudgeJob, run_judge
from claimdiff.rewards.judged import derive_result
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.runners.options import pipeline_options
from claimdiff.schemas.arrow import to_table
from claimdiff.schemas.rows import DifferenceRow
from claimdiff.synth.sample import write_sample
from claimdiff.transforms.judge import prepare


def plain_loop(manifest: str, out: Path, config: ClaimdiffConfig) -> int:
    """The same work as the pipeline in one loop; returns the rows judged (answered or not)."""
    setup = JudgeSetup.build(config)
    mapper = TypeMapper(config.taxonomy)
    backend = build_backend(setup)
    images: dict[str, LoadedImage] = {}
    differences: list[DifferenceRow] = []
    rewards: list[dict[str, Any]] = []

    def items() -> Iterator[JudgeItem]:
        for index, record in iter_manifest(manifest):
            assert isinstance(record, dict)
            row = validate_row(record, manifest=manifest, row_index=index,
                               allowed_schemes=config.images.allowed_schemes)
            if row.image_uri not in images:
                images[row.image_uri] = load_image(row.image_uri, config.images)
            yield prepare((images[row.image_uri], row), setup)

    rows = 0
    pending = items()
    while batch := list[JudgeItem](islice(pending, config.judge.max_batch_size)):
        for result in judge_batch(batch, backend, setup):
            rows += 1
            if not result.ok:
                continue
            try:
                derived = derive_result(result, "plain", config, setup, mapper)
            except (ValueError, KeyError):
                continue
            differences.extend(derived.differences)
            rewards.append({"row_index": result.item.row.row_index, "reward": derived.reward})
    pq.write_table(to_table(differences, DifferenceRow), out / "differences.parquet",
                   compression="zstd")
    pq.write_table(pa.Table.from_pylist(rewards), out / "rewards.parquet", compression="zstd")
    return rows


def beam_run(preset: str) -> Callable[[str, Path, ClaimdiffConfig], int]:
    def run(manifest: str, out: Path, config: ClaimdiffConfig) -> int:
        result = run_judge(JudgeJob(manifest=manifest, output=str(out), config=config),
                           pipeline_options([], preset, workers=2))
        assert result.accounting.balanced
        return result.accounting.rows_in  # answered or failed, as the plain loop counts
    return run


# the tiny model's settings (benchmarks/batching.py): short constrained answers, so a run takes
# seconds on CPU; a random-weight model's answers are noise, the time per row is the point
TINY_MODEL = {"judge.backend": "transformers", "judge.max_batch_size": 8,
              "judge.max_differences": 1,
              "judge.max_string_chars": 4, "judge.max_new_tokens": 64,
              "run.max_failure_share": 1.0}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=None, help="scenes for the labels judge")
    p.add_argument("--model-images", type=int, default=None,
                   help="scenes for the transformers judge (default 24, quick 2)")
    p.add_argument("--actors", type=int, default=4)
    p.add_argument("--judges", nargs="+", default=["labels", "transformers"],
                   choices=["labels", "transformers"])
    args = p.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    report = Report("pipeline_overhead", {"quick": args.quick, "actors": args.actors,
                                          "repeats": repeats},
                    ["judge", "mode", "rows", "median s", "rows/s", "x plain"])
    with tempfile.TemporaryDirectory() as tmp:
        for judge in args.judges:
            if judge == "labels":
                images = args.images or (20 if args.quick else 200)
                config = load_config(None, {"judge.max_batch_size": 32})
            else:
                from tests.support.tiny_vlm import build_tiny_llava

                images = args.model_images or (2 if args.quick else 24)
                model = build_tiny_llava(Path(tmp) / "llava")
                config = load_config(None, {**TINY_MODEL, "judge.model": str(model)})
            manifest = write_sample(f"{tmp}/{judge}", images=images, actors=args.actors,
                                    broken=False)
            modes = {"plain loop": plain_loop, "beam in-process": beam_run("local")}
            if judge == "labels" or not args.quick:
                modes["beam 2 worker processes"] = beam_run("multiprocess")
            times, rows = interleaved(
                {name: _in_fresh_folder(fn, manifest, Path(tmp) / judge, config)
                 for name, fn in modes.items()}, repeats)
            base = median(times["plain loop"])
            for name, samples in times.items():
                report.add(**{"judge": judge, "mode": name, "rows": rows[name],
                              "median s": median(samples),
                              "rows/s": rows[name] / median(samples),
                              "x plain": median(samples) / base})
            report.target(f"{judge} judge, in-process pipeline / plain loop (wall time)",
                          median(times["beam in-process"]) / base, 1.2, False)
    report.notes.append(
        "the labels judge costs ~nothing, so its ratio is the pipeline's own cost per row and "
        "per run (start-up); with a model in the loop that cost is divided by the model's "
        "time per row")
    report.finish(args.json)


def _in_fresh_folder(fn: Callable[[str, Path, ClaimdiffConfig], int], manifest: str,
                     root: Path, config: ClaimdiffConfig) -> Callable[[], int]:
    runs = iter(range(10**6))

    def run() -> int:
        out = root / f"out-{id(fn)}-{next(runs)}"
        out.mkdir(parents=True)
        return fn(manifest, out, config)
    return run


if __name__ == "__main__":
    main()
