from __future__ import annotations

import json

import pytest

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.parsing import parse_judge_output
from tests.conftest import diff, gold

VALID = json.dumps(gold(diff("dogs", "two dogs", "one dog", "reference",
                             actor_error=("count_mismatch", 3))))


@pytest.mark.parametrize(
    "text",
    [
        VALID,
        f"Here is my answer:\n{VALID}\nHope this helps.",
        f"```json\n{VALID}\n```",
        VALID.replace("two dogs", "two\ndogs"),  # raw control character inside a string
        '{"differences": []}',
    ],
    ids=["plain", "prose-around", "fenced", "raw-newline", "minimal"],
)
def test_valid_answers(text: str):
    output = parse_judge_output(text)
    assert len(output.differences) in (0, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "empty answer"),
        ("   ", "empty answer"),
        ("I cannot judge this image.", "no JSON object"),
        (VALID[: len(VALID) // 2], "not closed|not valid JSON"),
        ('{"differences": [}', "not valid JSON"),
        ('{"differences": "none"}', "does not fit the judge schema: differences"),
        (json.dumps(gold(diff("x", None, None, "actor"))), "actor_claim or a reference_claim"),
        (json.dumps(gold(diff("x", "a", None, "probably"))), "differences.0.judgment"),
    ],
    ids=["none", "blank", "prose", "truncated", "syntax", "wrong-type", "no-claims", "judgment"],
)
def test_invalid_answers_say_why(text: str | None, message: str):
    with pytest.raises(JudgeOutputError, match=message):
        parse_judge_output(text)
