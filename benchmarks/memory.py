"""B5 memory: peak RSS of a judge run over a corpus and over ten times that corpus.

Each run is a fresh interpreter running `run_judge` with the `labels` judge on the in-process
runner, and reports its own peak RSS (`ru_maxrss`). Target: the 10x corpus peaks at most 1.2x
the 1x corpus (the run streams; nothing holds the whole corpus).

    python -m benchmarks.memory [--quick] [--images N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from benchmarks.harness import Report, parser
from claimdiff.synth import write_synthetic

RUN = textwrap.dedent("""
    import resource, sys
    from claimdiff.config import load_config
    from claimdiff.pipelines.judge import JudgeJob, run_judge
    from claimdiff.runners.options import pipeline_options
    result = run_judge(JudgeJob(manifest=sys.argv[1], output=sys.argv[2],
                                config=load_config(None)), pipeline_options([], "local", None))
    assert result.status == "ok", result.status
    print(result.accounting.rows_in, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def peak(manifest: str, output: Path) -> tuple[int, float]:
    done = subprocess.run([sys.executable, "-c", RUN, manifest, str(output)], check=True,
                          capture_output=True, text=True)
    rows, kib = done.stdout.split()[-2:]
    return int(rows), int(kib) / 1024


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=None, help="scenes in the 1x corpus")
    args = p.parse_args(argv)
    images = args.images or (4 if args.quick else 20)
    report = Report("memory", {"quick": args.quick, "images": images},
                    ["corpus", "rows", "peak RSS MiB", "vs 1x"])
    with tempfile.TemporaryDirectory(prefix="claimdiff-b5-") as tmp:
        root = Path(tmp)
        base: float | None = None
        for scale in (1, 10):
            manifest = write_synthetic(str(root / f"data-{scale}"), n=images * scale, seed=0)
            rows, mib = peak(manifest, root / f"run-{scale}")
            base = base or mib
            report.add(**{"corpus": f"{scale}x", "rows": rows, "peak RSS MiB": mib,
                          "vs 1x": mib / base})
        report.target("peak RSS 10x / 1x", mib / base, 1.2, higher_is_better=False)
    report.notes.append("The in-process runner's fused stages hold a bundle's decoded images "
                        "(one image group per element) and Beam's own buffers; the Python "
                        "interpreter with Beam, pyarrow and PIL loaded is most of the 1x peak.")
    report.finish(args.json)


if __name__ == "__main__":
    main()
