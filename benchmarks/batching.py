"""B6 batching: samples per second against batch size for the `transformers` backend on CPU.

The tests' tiny random-weight LLaVA (built offline), the decoding schema the tests use, the same
requests at every batch size; batch size 1 is the plain alternative. Then the same requests
through `claimdiff judge` with `judge.max_batch_size` set, to show that Beam's batching reaches
the backend (the run's `claimdiff.judge/backend_calls` counter against the rows).

    python -m benchmarks.batching [--quick] [--batches 1 2 4 8]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.gpu_check import SCHEMA, make_requests, timed
from benchmarks.harness import Report, parser
from claimdiff.config import load_config
from claimdiff.judges.backends.base import Decoding
from claimdiff.pipelines.judge import JudgeJob, run_judge
from claimdiff.runners.options import pipeline_options
from claimdiff.synth import write_synthetic
from tests.support.tiny_vlm import build_tiny_llava


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--batches", type=int, nargs="+", default=None)
    p.add_argument("--requests", type=int, default=None)
    args = p.parse_args(argv)
    batches = args.batches or ([1, 4] if args.quick else [1, 2, 4, 8])
    count = args.requests or (8 if args.quick else 32)
    from claimdiff.judges.backends.transformers import TransformersBackend

    report = Report("batching", {"quick": args.quick, "requests": count},
                    ["batch", "samples/s", "vs batch 1", "pipeline backend calls / rows"])
    decoding = Decoding(max_new_tokens=64)
    with tempfile.TemporaryDirectory(prefix="claimdiff-b6-") as tmp:
        model = build_tiny_llava(Path(tmp) / "llava")
        backend = TransformersBackend(str(model), SCHEMA, device="cpu")
        requests = make_requests(count)
        manifest = write_synthetic(str(Path(tmp) / "data"), n=2, seed=0)
        base: float | None = None
        for batch in batches:
            _, seconds = timed(backend, requests, decoding, batch)
            rate = count / seconds
            base = base or rate
            config = load_config(None, {
                "judge.backend": "transformers", "judge.model": str(model),
                "judge.max_batch_size": batch,
                "judge.max_differences": 1, "judge.max_string_chars": 4,
                "judge.max_new_tokens": 64, "run.max_failure_share": 1.0})
            run = run_judge(JudgeJob(manifest=manifest, output=str(Path(tmp) / f"run-{batch}"),
                                     config=config), pipeline_options([], "local", None))
            calls = run.counters.get("claimdiff.judge/backend_calls", 0)
            report.add(**{"batch": batch, "samples/s": rate, "vs batch 1": rate / base,
                          "pipeline backend calls / rows":
                          f"{calls} / {run.accounting.rows_in}"})
    report.notes.append("A random-weight model's answers are noise; what is measured is the "
                        "backend's throughput at each batch size, and that the pipeline hands "
                        "it batches (fewer backend calls than rows once the batch is above 1).")
    report.finish(args.json)


if __name__ == "__main__":
    main()
