"""PipelineOptions for the runners claimdiff is run and tested on.

Beam 2.77's default `DirectRunner` first tries to start Prism, which downloads a binary and fails
offline; claimdiff therefore always names its runner. Without `--runner`, a run uses Beam's
in-process `FnApiRunner`; `--runner_preset=multiprocess` runs the same runner with worker
processes (which also proves that every stage's state pickles). Any other Beam option
(`--runner=DataflowRunner --project ... --setup_file ./setup.py`, ...) is passed through as is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

PRESETS = ("local", "multiprocess")
_SECRET = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


def pipeline_options(
    beam_args: Sequence[str], preset: str = "local", workers: int | None = None
) -> PipelineOptions:
    args = list(beam_args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in args):
        args.append("--runner=FnApiRunner")
        if preset == "multiprocess":
            args += [
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={workers or min(4, os.cpu_count() or 1)}",
            ]
        elif preset != "local":
            raise ValueError(f"unknown runner preset {preset!r}; choose from {PRESETS}")
    return PipelineOptions(args)


def sanitised_options(options: PipelineOptions) -> dict[str, Any]:
    """Options as set (defaults dropped), with anything that looks like a secret redacted."""
    return {
        key: "<redacted>" if _SECRET.search(key) else value
        for key, value in sorted(options.get_all_options(drop_default=True).items())
    }
