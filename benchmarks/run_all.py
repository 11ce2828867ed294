"""Every benchmark in turn, then one table of their targets (`make bench`, `make bench-quick`).

    python -m benchmarks.run_all [--quick]

Each benchmark runs in its own interpreter (so one's memory and threads do not colour the
next) and writes its JSON under `benchmarks/results/`; this reads them back for the summary.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.harness import RESULTS_DIR, parser

BENCHMARKS = ["image_decode", "cpu_side", "pipeline_overhead", "reruns", "memory",
              "reward_service", "batching"]


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    failed = []
    for name in BENCHMARKS:
        command = [sys.executable, "-m", f"benchmarks.{name}",
                   "--json", str(RESULTS_DIR / f"{name}.json")]
        if args.quick:
            command.append("--quick")
        print(f"\n=== {name}", flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    print("\n## targets")
    print("| benchmark | target | value | limit | verdict |\n|---|---|---|---|---|")
    for name in BENCHMARKS:
        path = RESULTS_DIR / f"{name}.json"
        if name in failed or not path.exists():
            print(f"| {name} | (benchmark failed) | - | - | - |")
            continue
        for t in json.loads(path.read_text())["targets"]:
            verdict = "met" if t["met"] else "not met"
            print(f"| {name} | {t['target']} | {t['value']} | {t['limit']} | {verdict} |")
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
