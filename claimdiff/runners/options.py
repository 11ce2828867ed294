"""PipelineOptions for the runners claimdiff is run and tested on.

Beam 2.77's default `DirectRunner` first tries to start Prism, which downloads a binary and fails
offline; claimdiff therefore always names its runner. Without `--runner`, a run uses Beam's
in-process `FnApiRunner`; `--runner-preset multiprocess` runs the same runner with worker
processes (which also proves that every stage's state pickles). Any other Beam option
(`--runner=DataflowRunner --project ... --setup_file ./setup.py`, ...) is passed through as is;
an argument that is no Beam option is refused (`unknown_beam_args`), because Beam itself only
logs and drops it, and a mistyped `--modle` would otherwise run the wrong job without a word.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from claimdiff.errors import ConfigError
from claimdiff.io.storage import apply_beam_storage_options
from claimdiff.runners.presets import PRESETS as PRESET_TABLE
from claimdiff.runners.presets import check_preset, resolve_args

PRESETS = tuple(PRESET_TABLE)
_SECRET = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


def _beam_parser() -> argparse.ArgumentParser:
    """A parser of every option a Beam `PipelineOptions` class defines, as Beam builds it."""
    # Beam's own parser class: option classes call its add_value_provider_argument
    parser = _BeamArgumentParser(allow_abbrev=False, add_help=False)
    classes = {str(cls): cls for cls in PipelineOptions.__subclasses__()}
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def check_beam_args(beam_args: Sequence[str], other_options: Sequence[str] = ()) -> None:
    """Raise `ConfigError` naming every argument no Beam option class defines.

    `other_options` (the caller's own flags) only serve the "did you mean" hints.
    """
    parser = _beam_parser()
    _, unknown = parser.parse_known_args(list(beam_args))
    if not unknown:
        return
    known = [opt for action in parser._actions for opt in action.option_strings]
    known += list(other_options)
    hints: list[str] = []
    for arg in unknown:
        if hints and not arg.startswith("-") and hints[-1].startswith("-") and "=" not in hints[-1]:
            hints[-1] += f" {arg}"  # the value of the flag before it
            continue
        hints.append(arg)
    for i, hint in enumerate(hints):
        flag = hint.split("=", 1)[0].split(" ", 1)[0]
        close = difflib.get_close_matches(flag, known, n=1) if flag.startswith("-") else []
        if close:
            hints[i] = f"{hint} (did you mean {close[0]}?)"
    raise ConfigError(
        "unrecognized arguments (neither claimdiff options nor Beam pipeline options): "
        + ", ".join(hints))


def pipeline_options(
    beam_args: Sequence[str], preset: str = "local", workers: int | None = None,
    config: Any = None,
) -> PipelineOptions:
    """Validated options: the preset's defaults for what `beam_args` leaves out
    (`claimdiff.runners.presets`), checked against the preset's needs and the judge's config."""
    options = PipelineOptions(resolve_args(preset, beam_args, workers))
    check_preset(preset, options.get_all_options(), config)
    apply_beam_storage_options(beam_args)  # Beam's --s3_endpoint_url for fsspec too
    return options


def sanitised_options(options: PipelineOptions) -> dict[str, Any]:
    """Options as set (defaults dropped), with anything that looks like a secret redacted."""
    return {
        key: "<redacted>" if _SECRET.search(key) else value
        for key, value in sorted(options.get_all_options(drop_default=True).items())
    }
