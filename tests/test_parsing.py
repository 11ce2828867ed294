from __future__ import annotations

import json

import pytest

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.formats.json_answer import parse_judge_output
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
        '{"differences": [], "overall": "tie"}',
        '{"differences": [], "overall": null}',
    ],
    ids=["plain", "prose-around", "fenced", "raw-newline", "minimal", "no-overall-verdict"],
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
        (json.dumps(gold(diff("x", "\u200b\u3164", None, "actor"))), "invisible"),
        (json.dumps(gold(diff("x", "a", None, "probably"))), "differences.0.judgment"),
    ],
    ids=["none", "blank", "prose", "truncated", "syntax", "wrong-type", "no-claims",
         "invisible-claim", "judgment"],
)
def test_invalid_answers_say_why(text: str | None, message: str):
    with pytest.raises(JudgeOutputError, match=message):
        parse_judge_output(text)


_ONE = diff("dogs", "two dogs", "one dog", "reference", actor_error=("count_mismatch", 3))


def _with(**changes: object) -> str:
    return json.dumps({"differences": [{**_ONE, **changes}], "overall": "reference"})


# Answers that are not judge outputs, and answers whose values would only fit by coercion. Each
# must fail (and so be retried, then written to failures/), never score as "no differences".
NOT_ANSWERS = {
    "empty-object": "{}",
    "proxy-error": '{"error": {"message": "upstream timed out", "type": "server_error"}}',
    "prose-around-other-object": 'Sorry, I got: {"status": "busy"} - try later',
    "differences-null": '{"differences": null, "overall": "tie"}',
    "differences-object": '{"differences": {}, "overall": "tie"}',
    "differences-string": '{"differences": "", "overall": "tie"}',
    "overall-only": '{"overall": "tie"}',
    "differences-without-overall": '{"differences": []}',
    "wrong-case-key": '{"Differences": [], "overall": "tie"}',
    "nested-answer": '{"result": {"differences": [], "overall": "tie"}}',
    "extra-key": '{"differences": [], "overall": "tie", "error": "rate limited"}',
    "repeated-key": '{"differences": [' + json.dumps(_ONE) + '], "differences": [], '
                    '"overall": "tie"}',
    "empty-difference": '{"differences": [{}], "overall": "tie"}',
    "difference-missing-keys": '{"differences": [{"aspect": "x", "actor_claim": "a", '
                               '"judgment": "actor"}], "overall": "actor"}',
    "severity-true": _with(actor_error={"type": "count", "detail": "", "severity": True}),
    "severity-float": _with(actor_error={"type": "count", "detail": "", "severity": 2.0}),
    "severity-string": _with(actor_error={"type": "count", "detail": "", "severity": "3"}),
    "confidence-string": _with(confidence="0.9"),
    "confidence-bool": _with(confidence=True),
    "confidence-nan": _with(confidence=float("nan")),
    "confidence-infinity": _with(confidence=float("inf")),
    "claim-number": _with(actor_claim=2),
    "aspect-invisible": _with(aspect="\u200b\u200b"),
    "error-type-invisible": _with(actor_error={"type": "\u2060", "detail": "", "severity": 1}),
    "error-missing-detail": _with(actor_error={"type": "count", "severity": 1}),
    "judgment-number": _with(judgment=1),
}


@pytest.mark.parametrize("text", list(NOT_ANSWERS.values()), ids=list(NOT_ANSWERS))
def test_what_is_not_a_judge_output_never_parses(text: str):
    with pytest.raises(JudgeOutputError):
        parse_judge_output(text)
