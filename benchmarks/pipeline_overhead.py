"""What the Beam pipeline costs over a plain loop doing the same work, with the `labels` judge.

    python -m benchmarks.pipeline_overhead [--quick] [--images 200] [--actors 4] [--repeats 3]

Both sides do the same work per row: validate, read + hash + decode each image once, render the
prompt, parse and validate the judge answer, derive outcomes, statistics and rewards, and write
zstd Parquet. The plain side does it in one Python loop; the Beam sides run the real pipeline
(in-process FnApiRunner, and worker processes). Prints medians and the ratio to the plain loop,
measured in the same run because these machines are shared and noisy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.harness import Report, interleaved, median, parser
from claimdiff.config import ClaimdiffConfig, load_config
from claimdiff.io.images import load_image
from claimdiff.io.manifest import iter_manifest, validate_row
from claimdiff.judges.backends.labels import LabelsBackend
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.loop import judge_batch
from claimdiff.pipelines.judge import JudgeJob, run_judge
from claimdiff.rewards.presets import compute_rewards
from claimdiff.rewards.stats import Provenance, derive
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.runners.options import pipeline_options
from claimdiff.schemas.arrow import to_table
from claimdiff.schemas.rows import DifferenceRow
from claimdiff.synth.sample import write_sample
from claimdiff.transforms.judge import prepare


def plain_loop(manifest: str, out: Path, config: ClaimdiffConfig) -> int:
    setup = JudgeSetup.build(config)
    mapper = TypeMapper(config.taxonomy)
    backend = LabelsBackend()
    images = {}
    differences: list[DifferenceRow] = []
    rows = 0
    for index, record in iter_manifest(manifest):
        assert isinstance(record, dict)
        row = validate_row(record, manifest=manifest, row_index=index,
                           allowed_schemes=config.images.allowed_schemes)
        if row.image_uri not in images:
            images[row.image_uri] = load_image(row.image_uri, config.images)
        item = prepare((images[row.image_uri], row), setup)
        [result] = judge_batch([item], backend, setup)
        assert result.output is not None
        provenance = Provenance(run_id="plain", image_sha256=item.image.sha256,
                                judge_model=setup.model_id, prompt_version=setup.prompt_version,
                                decoding=setup.decoding, cache_key=item.cache_key, attempts=1)
        found, stats = derive(row, result.output, provenance, config, mapper)
        compute_rewards(stats, config.rewards, config.severity)
        differences.extend(found)
        rows += 1
    pq.write_table(to_table(differences, DifferenceRow), out / "differences.parquet",
                   compression="zstd")
    return rows


def beam_run(preset: str) -> Callable[[str, Path, ClaimdiffConfig], int]:
    def run(manifest: str, out: Path, config: ClaimdiffConfig) -> int:
        result = run_judge(JudgeJob(manifest=manifest, output=str(out), config=config),
                           pipeline_options([], preset, workers=2))
        assert result.accounting.balanced
        return result.accounting.rows_judged
    return run


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=None)
    p.add_argument("--actors", type=int, default=4)
    args = p.parse_args()
    images = args.images or (20 if args.quick else 200)
    repeats = args.repeats or (1 if args.quick else 3)

    config = load_config(None, {"judge.max_batch_size": 32})
    report = Report("pipeline_overhead", {"quick": args.quick, "images": images,
                                          "actors": args.actors, "repeats": repeats},
                    ["mode", "rows", "median s", "rows/s", "x plain"])
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_sample(f"{tmp}/data", images=images, actors=args.actors, broken=False)
        runs = iter(range(10**6))

        def mode(fn: Callable[[str, Path, ClaimdiffConfig], int]) -> Callable[[], int]:
            def run() -> int:
                out = Path(tmp) / f"out-{next(runs)}"
                out.mkdir()
                return fn(manifest, out, config)
            return run

        times, rows = interleaved({"plain loop": mode(plain_loop),
                                   "beam in-process": mode(beam_run("local")),
                                   "beam 2 worker processes": mode(beam_run("multiprocess"))},
                                  repeats)
    base = median(times["plain loop"])
    for name, samples in times.items():
        report.add(**{"mode": name, "rows": rows[name], "median s": median(samples),
                      "rows/s": rows[name] / median(samples), "x plain": median(samples) / base})
    report.target("labels judge, in-process pipeline / plain loop (wall time)",
                  median(times["beam in-process"]) / base, 1.2, False)
    report.notes.append("the labels judge costs ~nothing, so this is the pipeline's own cost per "
                        "row; with a model judge it is divided by the model's time per row")
    report.finish(args.json)


if __name__ == "__main__":
    main()
