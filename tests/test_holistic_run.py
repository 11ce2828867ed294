"""The holistic baseline through the pipeline: one 0-10 call per row through the same backend,
its score the `holistic` preset's reward; a failed or refused holistic call leaves that reward
null while every other preset of the row stands."""

from __future__ import annotations

import json
from collections.abc import Sequence

from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer, Role
from tests.conftest import diff, gold
from tests.pipeline_support import read, run

GOLD = gold(diff("number of dogs", "Three dogs.", "Two dogs.", "reference",
                 ("count_mismatch", 3)))
PRESETS = {"rewards.presets": [{"kind": "relative", "name": "relative"},
                               {"kind": "holistic", "name": "holistic"}]}


class Holistic:
    """Answers the first pass from the gold and scores every caption 7 out of 10."""

    model_id = "holistic-test"

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        return [RawAnswer(text="SCORE: 7\nRATIONALE: mostly right." if r.role is Role.HOLISTIC
                          else r.gold) for r in requests]


def _manifest(write_image, write_manifest):
    write_image("a.png")
    return write_manifest([{"image": "a.png", "reference": "Two dogs.", "caption": f"{n} dogs.",
                            "gold": GOLD} for n in ("Three", "3")])


def test_a_holistic_score_per_row(tmp_path, write_image, write_manifest):
    out = tmp_path / "out"
    result = run(_manifest(write_image, write_manifest), out, PRESETS,
                 backend_factory=lambda setup: Holistic())
    assert result.accounting.rows_judged == 2
    assert "+paper_holistic@" in result.prompt_version
    assert (result.judge_stats["holistic_requests"], result.judge_stats["holistic_failures"]) == (
        2, 0)
    for reward in read(out, "rewards"):
        values = {v["name"]: v["value"] for v in reward["rewards"]}
        assert values["holistic"] == 0.7
        assert values["relative"] == 0.0
        assert reward["stats"]["holistic_score"] == 7
        assert reward["holistic_answer"].startswith("SCORE: 7")


def test_the_labels_judge_has_no_holistic_score(tmp_path, write_image, write_manifest):
    out = tmp_path / "out"
    result = run(_manifest(write_image, write_manifest), out, PRESETS)
    assert result.status == "ok"
    assert result.accounting.rows_judged == 2  # the row stands
    assert result.judge_stats["holistic_failures"] == 2
    for reward in read(out, "rewards"):
        values = {v["name"]: v["value"] for v in reward["rewards"]}
        assert values["holistic"] is None
        assert values["relative"] == 0.0
        assert json.loads(reward["raw_answer"]) == GOLD
