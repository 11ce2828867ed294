"""What the Beam pipeline costs over a plain loop doing the same work, with the `labels` judge.

    python benchmarks/pipeline_overhead.py [--images 200] [--actors 4] [--repeats 3]

Both sides do the same work per row: validate, read + hash + decode each image once, render the
prompt, parse and validate the judge answer, derive outcomes, statistics and rewards, and write
zstd Parquet. The plain side does it in one Python loop; the Beam sides run the real pipeline
(in-process FnApiRunner, and worker processes). Prints medians and the ratio to the plain loop,
measured in the same run because these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

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
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = load_config(None, {"judge.max_batch_size": 32})
    modes: dict[str, Callable[[str, Path, ClaimdiffConfig], int]] = {
        "plain loop": plain_loop,
        "beam in-process": beam_run("local"),
        "beam 2 worker processes": beam_run("multiprocess"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_sample(f"{tmp}/data", images=args.images, actors=args.actors,
                                broken=False)
        times: dict[str, list[float]] = {name: [] for name in modes}
        rows: dict[str, int] = {}
        for repeat in range(args.repeats):
            for name, fn in modes.items():  # interleaved, so drift hits every mode alike
                out = Path(tmp) / f"out-{repeat}-{name.replace(' ', '-')}"
                out.mkdir()
                started = time.perf_counter()
                rows[name] = fn(manifest, out, config)
                times[name].append(time.perf_counter() - started)

    base = statistics.median(times["plain loop"])
    print(f"{args.images} images x {args.actors} actors, median of {args.repeats}")
    print(f"{'mode':<26}{'rows':>7}{'median s':>10}{'rows/s':>9}{'x plain':>9}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<26}{rows[name]:>7}{median:>10.2f}{rows[name] / median:>9.0f}"
              f"{median / base:>9.2f}")


if __name__ == "__main__":
    main()
