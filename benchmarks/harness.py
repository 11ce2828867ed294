"""The shared benchmark harness: environment, `--quick`, interleaved medians, a table and JSON.

Every benchmark in this folder measures claimdiff next to the plain alternative *in the same run*
(the machines are shared and noisy, so only same-run ratios mean anything), prints the machine
it ran on, and writes its figures as JSON beside the printed table (`benchmarks/results/` by
default) so two runs can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_PACKAGES = ("pillow", "pyarrow", "apache-beam", "pydantic", "torch", "transformers", "numpy")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (a container's affinity, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict[str, Any]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpu": cpu_model(), "cores": usable_cores(), "host_cores": os.cpu_count(),
            "load_1min": round(load[0], 2), "python": platform.python_version(),
            "platform": platform.platform(), "commit": git_commit(), "packages": versions,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def print_environment(env: dict[str, Any]) -> None:
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    print(f"# {env['cpu']}, {env['cores']} usable cores (host {env['host_cores']}), "
          f"load {env['load_1min']}, Python {env['python']}, commit {env['commit']}")
    print(f"# {packages}")


def parser(description: str | None) -> argparse.ArgumentParser:
    """The common options; each benchmark adds its own."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a smoke run for CI: few inputs, one repeat")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (median reported)")
    p.add_argument("--json", type=Path, default=None,
                   help="where the JSON result goes (default benchmarks/results/NAME.json)")
    return p


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def interleaved(modes: dict[str, Callable[[], Any]], repeats: int
                ) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Each mode `repeats` times, in turn, so drift on a shared machine hits every mode alike;
    returns the wall times and each mode's last return value."""
    times: dict[str, list[float]] = {name: [] for name in modes}
    values: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in modes.items():
            seconds, values[name] = timed(fn)
            times[name].append(seconds)
    return times, values


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Report:
    """One benchmark's result: rows of one table, targets with their verdicts, and notes."""

    name: str
    args: dict[str, Any]
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=environment)

    def add(self, **row: Any) -> None:
        self.rows.append(row)

    def target(self, what: str, value: float, limit: float, higher_is_better: bool) -> bool:
        met = value >= limit if higher_is_better else value <= limit
        self.targets.append({"target": what, "value": round(value, 3), "limit": limit,
                             "met": met})
        return met

    def table(self) -> str:
        cells = [[_fmt(row.get(c)) for c in self.columns] for row in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(self.columns)]
        def line(values: list[str], pad: Callable[[str, int], str]) -> str:
            return "| " + " | ".join(pad(v, w) for v, w in zip(values, widths, strict=True)) + " |"

        lines = [line(self.columns, str.ljust), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [line(r, str.rjust) for r in cells]
        return "\n".join(lines)

    def finish(self, json_path: Path | None) -> Path:
        print_environment(self.env)
        print(f"## {self.name}  ({' '.join(f'{k}={v}' for k, v in self.args.items())})")
        print(self.table())
        for t in self.targets:
            verdict = "met" if t["met"] else "NOT met"
            print(f"target: {t['target']}: {t['value']} (limit {t['limit']}) -> {verdict}")
        for note in self.notes:
            print(f"note: {note}")
        path = json_path or RESULTS_DIR / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": self.name, "args": self.args, "env": self.env,
                                    "columns": self.columns, "rows": self.rows,
                                    "targets": self.targets, "notes": self.notes},
                                   indent=2, default=str) + "\n")
        print(f"# JSON: {path}")
        sys.stdout.flush()
        return path


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if value < 0.01 else f"{value:.2f}"
    return str(value)
