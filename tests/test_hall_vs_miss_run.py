"""The hall_vs_miss format through the judge pipeline (answers carried by the labels judge):
its records land on the difference rows, and the hall_vs_miss preset with labels counting gives
the released value."""

from __future__ import annotations

import math
from pathlib import Path

from claimdiff.cli import EXIT_OK, main
from claimdiff.io.datasets import read_rows
from claimdiff.schemas.rows import DifferenceRow, RewardRow

ANSWER = """[DIFFERENCE 1]
TYPE: contradiction
CONTENT: a blue car
CATEGORY: natural
VERIFICATION: false
REASON: the car is red
IS_HALLUCINATION: true

[DIFFERENCE 2]
TYPE: missing_fact
CONTENT: the sign reading OPEN
CATEGORY: design
VERIFICATION: missing
REASON: GT mentions the sign
IS_HALLUCINATION: false

[DIFFERENCE 3]
TYPE: extra_info
CONTENT: a bicycle
CATEGORY: natural
VERIFICATION: verified
REASON: it is there
IS_HALLUCINATION: false

[DIFFERENCE 4]
TYPE: extra_info
CONTENT: maybe rain
CATEGORY: natural
VERIFICATION: ambiguous
REASON: cannot tell
IS_HALLUCINATION: false
"""
CONFIG = """\
judge: {output_format: hall_vs_miss}
rewards:
  primary: hall_vs_miss
  presets:
    - {name: hall_vs_miss, kind: hall_vs_miss, counting: labels}
    - {name: hall_vs_miss_outcomes, kind: hall_vs_miss}
    - {name: hall_vs_miss_ambiguity, kind: hall_vs_miss, counting: labels,
       ambiguity_penalty: true, ambiguity_free: 0}
"""


def test_hall_vs_miss_run(tmp_path: Path, write_image, write_manifest):
    write_image("a.png")
    manifest = write_manifest([{"image": "a.png", "reference": "A red car by a shop.",
                                "caption": "A blue car or a van, and a bicycle.",
                                "gold": ANSWER}])
    (tmp_path / "config.yaml").write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["judge", "--manifest", str(manifest), "--output", str(out), "--config",
                 str(tmp_path / "config.yaml")]) == EXIT_OK
    differences = read_rows(str(out), "differences", DifferenceRow)
    assert [(d.hall_type, d.hall_verification, d.hall_category, d.hall_is_hallucination)
            for d in differences] == [
        ("contradiction", "false", "natural", True), ("missing_fact", "missing", "design", False),
        ("extra_info", "verified", "natural", False), ("extra_info", "ambiguous", "natural", False)]
    assert [[o.value for o in d.outcomes] for d in differences] == [
        ["actor_hallucination"], ["actor_omission"], ["actor_extra_correct"], ["unverifiable"]]
    assert differences[0].prompt_version.startswith("paper_hall_vs_miss@")
    [row] = read_rows(str(out), "rewards", RewardRow)
    values = {v.name: v.value for v in row.rewards}
    # released: (1 hallucination + 1 missing fact) / 4 blocks -> 0.5
    assert values["hall_vs_miss"] == 0.5
    # outcomes: the ambiguous block is not a real difference: 1 - 2 / 3
    assert values["hall_vs_miss_outcomes"] == 1.0 - 2 / 3
    # "or" is an ambiguity token, none free: 0.5 * exp(-0.1)
    assert row.stats is not None
    assert row.stats.actor_ambiguity == 1
    assert values["hall_vs_miss_ambiguity"] == 0.5 * math.exp(-0.1)
