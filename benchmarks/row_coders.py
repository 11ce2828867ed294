"""Does a row coder beat Beam's default (pickling) for what flows between claimdiff's stages?

Beam encodes elements wherever a stage boundary is not fused (GroupByKey, Reshuffle, between
worker processes). For types it has no coder for, Beam falls back to pickling. This measures
encode + decode per element for the three kinds of element claimdiff moves: an `InputRow`
(small pydantic model), an (image, row) pair (a decoded image: megabytes of pixels), and a
`JudgeResult`; with Beam's own fallback coder, plain pickle, and a pydantic JSON coder.

    .venv/bin/python benchmarks/row_coders.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import time
from collections.abc import Callable
from typing import Any

from apache_beam.coders import registry
from PIL import Image

from claimdiff.io.images import LoadedImage
from claimdiff.judges.formats.json_answer import parse_judge_output
from claimdiff.judges.records import JudgeItem, JudgeResult
from claimdiff.schemas.rows import InputRow

ANSWER = json.dumps({"differences": [{
    "aspect": "number of dogs", "actor_claim": "There are three dogs.",
    "reference_claim": "There are two dogs.", "actor_span": None, "reference_span": None,
    "judgment": "reference", "actor_error": {"type": "count_mismatch", "detail": "3 vs 2",
                                             "severity": 3},
    "reference_error": None, "confidence": 0.9}] * 4, "overall": "reference"})


def _row() -> InputRow:
    return InputRow(manifest="gs://bucket/manifests/part-0001.jsonl", row_index=12345,
                    image="images/a.png", image_uri="gs://bucket/manifests/images/a.png",
                    reference="Two dogs sleep on a red sofa by the window. " * 8,
                    caption="Three dogs sleep on a sofa. " * 8, sample_id="0123456789abcdef",
                    actor_id="policy-3", gold=None, metadata='{"split": "train"}')


def _timed(function: Callable[[], Any], repeats: int) -> float:
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        rounds.append((time.perf_counter() - start) / repeats)
    return statistics.median(rounds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args()
    repeats = 20 if args.quick else 200
    row = _row()
    image = LoadedImage("gs://b/a.png", "0" * 64, 1024, 768,
                        Image.effect_noise((1024, 768), 40).convert("RGB"))
    item = JudgeItem(row=row, image=image, prompt="p" * 6000, cache_key="k" * 32)
    result = JudgeResult(item, parse_judge_output(ANSWER), ANSWER, 1)
    beam_coder = registry.get_coder(Any)

    def pydantic_json() -> None:
        InputRow.model_validate_json(row.model_dump_json())

    cases = [
        ("InputRow", row, pydantic_json),
        ("(LoadedImage, InputRow)", (image, row), None),
        ("JudgeResult", result, None),
    ]
    print(f"{'element':<26}{'beam default µs':>17}{'pickle µs':>12}{'pydantic json µs':>18}"
          f"{'pickled kB':>12}")
    for name, value, json_coder in cases:
        beam = _timed(lambda v=value: beam_coder.decode(beam_coder.encode(v)), repeats)
        plain = _timed(lambda v=value: pickle.loads(pickle.dumps(v, protocol=5)), repeats)
        via_json = _timed(json_coder, repeats) if json_coder else float("nan")
        size = len(pickle.dumps(value, protocol=5)) / 1024
        print(f"{name:<26}{beam:>17.1f}{plain:>12.1f}{via_json:>18.1f}{size:>12.1f}")


if __name__ == "__main__":
    main()
