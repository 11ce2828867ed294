"""Answers in every format the released ClaimDiff-RL prompts ask for, read into the records
claimdiff derives from: the sub-line error blocks of DIFF_PROMPT v1/v2/v4, the SEVERITY_LEVEL
lines of v5/v6, their no-error blocks (`ERROR_TYPE: NONE` / `ERROR_DETAIL: No error.` /
`SEVERITY_LEVEL: NA`), one-line errors, reasoning around the answer, the hall_vs_miss blocks and
the holistic score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.judges.formats import parser_for
from claimdiff.judges.formats.answer_tags import answer_text, has_think_and_answer, judge_answer
from claimdiff.judges.formats.hall_vs_miss import (
    parse_hall_vs_miss,
    parse_hall_vs_miss_judge_output,
)
from claimdiff.judges.formats.holistic import parse_holistic
from claimdiff.judges.formats.paper_text import parse_paper_text
from claimdiff.judges.loop import judge_batch
from claimdiff.schemas.baselines import HallVsMissOutput, HolisticOutput
from claimdiff.schemas.judge import JudgeOutput
from tests.support.judging import item, setup_of


def error(type_: str, detail: str = "", severity: int | None = None,
          raw: str | None = None) -> dict[str, Any]:
    return {"type": type_, "detail": detail, "severity": severity, "severity_raw": raw}


def out(*differences: dict[str, Any], overall: str = "reference") -> JudgeOutput:
    return JudgeOutput.model_validate({"differences": list(differences), "overall": overall})


def d(aspect: str, actor: str | None, reference: str | None, judgment: str,
      actor_error: dict[str, Any] | None = None,
      reference_error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"aspect": aspect, "actor_claim": actor, "reference_claim": reference,
            "judgment": judgment, "actor_error": actor_error, "reference_error": reference_error,
            "actor_span": None, "reference_span": None, "confidence": None}


# v1, v2, v4: errors as ERROR_TYPE / ERROR_DETAIL lines under the key, no severity
V1_ANSWER = """[DIFFERENCE 1]
ASPECT: number of dogs
CAPTION_A_CLAIM: There are three dogs.
CAPTION_B_CLAIM: There are two dogs.
JUDGMENT: B

CAPTION_A_ERROR:
ERROR_TYPE: count_mismatch
ERROR_DETAIL: Caption A says three dogs; the image shows two.

CAPTION_B_ERROR:
ERROR_TYPE: NONE
ERROR_DETAIL: No error.

[DIFFERENCE 2]
ASPECT: sofa colour
CAPTION_A_CLAIM: The sofa is red.
CAPTION_B_CLAIM: The sofa is green.
JUDGMENT: A

CAPTION_A_ERROR:
ERROR_TYPE: NONE
ERROR_DETAIL: No error.

CAPTION_B_ERROR:
ERROR_TYPE: color_hallucination
ERROR_DETAIL: The sofa is red, not green.

[DIFFERENCE 3]
ASPECT: lamp
CAPTION_A_CLAIM: A lamp stands behind the sofa.
CAPTION_B_CLAIM: NA
JUDGMENT: both_supported

CAPTION_A_ERROR:
ERROR_TYPE: NONE
ERROR_DETAIL: No error.

CAPTION_B_ERROR:
ERROR_TYPE: NONE
ERROR_DETAIL: No error.

[OVERALL_WINNER]
Tie
"""
V1_EXPECTED = out(
    d("number of dogs", "There are three dogs.", "There are two dogs.", "reference",
      error("count_mismatch", "Caption A says three dogs; the image shows two.")),
    d("sofa colour", "The sofa is red.", "The sofa is green.", "actor",
      reference_error=error("color_hallucination", "The sofa is red, not green.")),
    d("lamp", "A lamp stands behind the sofa.", None, "both_supported"), overall="tie")

# v5, v6: the same with SEVERITY_LEVEL lines, NA in a no-error block
V5_ANSWER = """[DIFFERENCE 1]
ASPECT: number of dogs
CAPTION_A_CLAIM: There are three dogs.
CAPTION_B_CLAIM: There are two dogs.
JUDGMENT: B

CAPTION_A_ERROR:
ERROR_TYPE: count_mismatch
ERROR_DETAIL: three instead of two
SEVERITY_LEVEL: 3

CAPTION_B_ERROR:
ERROR_TYPE: NONE
ERROR_DETAIL: No error.
SEVERITY_LEVEL: NA

[DIFFERENCE 2]
ASPECT: sign text
CAPTION_A_CLAIM: NA
CAPTION_B_CLAIM: The sign reads OPEN.
JUDGMENT: B

CAPTION_A_ERROR:
ERROR_TYPE: text_omission
ERROR_DETAIL: misses the sign
SEVERITY_LEVEL: 4

CAPTION_B_ERROR:
ERROR_TYPE: NA
ERROR_DETAIL: not applicable
SEVERITY_LEVEL: NA

[DIFFERENCE 3]
ASPECT: style
CAPTION_A_CLAIM: a watercolour painting
CAPTION_B_CLAIM: a photograph
JUDGMENT: both_wrong

CAPTION_A_ERROR:
ERROR_TYPE: style_misinterpretation
ERROR_DETAIL: it is a flat illustration
SEVERITY_LEVEL: 1 (minor)

CAPTION_B_ERROR:
ERROR_TYPE: style_misinterpretation
ERROR_DETAIL: it is a flat illustration
SEVERITY_LEVEL: high

[OVERALL_WINNER]
B
"""
V5_EXPECTED = out(
    d("number of dogs", "There are three dogs.", "There are two dogs.", "reference",
      error("count_mismatch", "three instead of two", 3)),
    d("sign text", None, "The sign reads OPEN.", "reference",
      error("text_omission", "misses the sign", None, "4")),
    d("style", "a watercolour painting", "a photograph", "both_wrong",
      error("style_misinterpretation", "it is a flat illustration", 1),
      error("style_misinterpretation", "it is a flat illustration", None, "high")))

ONE_LINE_ANSWER = """[DIFFERENCE 1]
ASPECT: number of dogs
CAPTION_A_CLAIM: There are three dogs.
CAPTION_B_CLAIM: There are two dogs.
JUDGMENT: B
CAPTION_A_ERROR: count_mismatch, three instead of two, 3
CAPTION_B_ERROR: NONE, No error., NA

[DIFFERENCE 2]
ASPECT: sofa colour
CAPTION_A_CLAIM: The sofa is red.
CAPTION_B_CLAIM: The sofa is green.
JUDGMENT: A
CAPTION_A_ERROR: NONE - No error. - NA
CAPTION_B_ERROR: color_hallucination | green, not red | 2

[OVERALL_WINNER]
A
"""
ONE_LINE_EXPECTED = out(
    d("number of dogs", "There are three dogs.", "There are two dogs.", "reference",
      error("count_mismatch", "three instead of two", 3)),
    d("sofa colour", "The sofa is red.", "The sofa is green.", "actor",
      reference_error=error("color_hallucination", "green, not red", 2)), overall="actor")

NO_ERROR_VARIANTS = [
    "CAPTION_A_ERROR:\nERROR_TYPE: NONE\nERROR_DETAIL: No error.",
    "CAPTION_A_ERROR:\nERROR_TYPE: NONE\nERROR_DETAIL: No error.\nSEVERITY_LEVEL: NA",
    "CAPTION_A_ERROR:\nERROR_TYPE: NA\nERROR_DETAIL: not applicable\nSEVERITY_LEVEL: NA",
    "CAPTION_A_ERROR:\nERROR_TYPE: None\nERROR_DETAIL: The claim matches the image.\n"
    "SEVERITY_LEVEL: 3",
    "CAPTION_A_ERROR:\nERROR_TYPE: N/A\nERROR_DETAIL: -",
    "CAPTION_A_ERROR: NONE\nERROR_DETAIL: No error.",
    "CAPTION_A_ERROR: NONE, No error., NA",
    "CAPTION_A_ERROR: No error",
    "CAPTION_A_ERROR: **NONE**",
]


@pytest.mark.parametrize(("text", "expected"), [
    (V1_ANSWER, V1_EXPECTED), (V5_ANSWER, V5_EXPECTED), (ONE_LINE_ANSWER, ONE_LINE_EXPECTED),
], ids=["v1-v2-v4-sub-lines", "v5-v6-severity-levels", "one-line-errors"])
def test_released_formats(text: str, expected: JudgeOutput):
    assert parse_paper_text(text) == expected
    assert parser_for("paper_text")(text) == expected


@pytest.mark.parametrize("block", NO_ERROR_VARIANTS)
def test_a_none_type_is_no_error_whatever_the_detail_says(block: str):
    text = ("[DIFFERENCE 1]\nASPECT: dogs\nCAPTION_A_CLAIM: two dogs\nCAPTION_B_CLAIM: one dog\n"
            f"JUDGMENT: A\n\n{block}\n\nCAPTION_B_ERROR:\nERROR_TYPE: count_mismatch\n"
            "ERROR_DETAIL: one, not two\n\n[OVERALL_WINNER]\nA")
    [difference] = parse_paper_text(text).differences
    assert difference.actor_error is None
    assert difference.reference_error is not None
    assert difference.reference_error.type == "count_mismatch"


def test_a_severity_outside_one_to_three_keeps_its_raw_value():
    [_, sign, style] = parse_paper_text(V5_ANSWER).differences
    assert sign.actor_error is not None
    assert style.reference_error is not None
    assert (sign.actor_error.severity, sign.actor_error.severity_raw) == (None, "4")
    assert (style.reference_error.severity, style.reference_error.severity_raw) == (None, "high")


REASONING = [
    ("think-then-answer", "<think>\nA says three dogs, B two; I count two.\n</think>\n"
                          + V1_ANSWER),
    ("answer-block", "<think>reasoning with a fake block:\n[DIFFERENCE 9]\nASPECT: x\n</think>"
                     f"<answer>\n{V1_ANSWER}</answer>"),
    ("closing-tag-only", "I count the dogs first.</think>\n\n" + V1_ANSWER),
    ("upper-case-tags", f"<THINK>...</THINK><ANSWER>{V1_ANSWER}</ANSWER> trailing"),
]


@pytest.mark.parametrize("text", [t for _, t in REASONING], ids=[i for i, _ in REASONING])
def test_reasoning_around_the_answer_is_not_read(text: str):
    assert parse_paper_text(text) == V1_EXPECTED


def test_an_unclosed_think_block_is_an_unfinished_answer():
    with pytest.raises(JudgeOutputError, match="never closes"):
        parse_paper_text("<think>A says three dogs, B says two" + V1_ANSWER)


def test_caption_answer_tags_as_the_released_code_reads_them():
    caption = "<think>\nmaybe two dogs\n</think>\n<answer>\nTwo dogs on a red sofa.\n</answer>"
    assert answer_text(caption) == "Two dogs on a red sofa."
    assert has_think_and_answer(caption)
    assert not has_think_and_answer("<answer>Two dogs.</answer>")
    assert answer_text("<answer>unclosed") == "<answer>unclosed"  # no block: the whole text
    assert answer_text("<answer> a </answer><answer> b </answer>") == "a"  # the first block
    assert judge_answer("no tags at all") == "no tags at all"


def test_no_overall_winner_is_an_incomplete_answer():
    without = V1_ANSWER.split("[OVERALL_WINNER]")[0]
    with pytest.raises(JudgeOutputError, match="no \\[OVERALL_WINNER\\]"):
        parse_paper_text(without)


class Replay:
    """A backend that answers from a script: each call takes the next answers."""

    model_id = "replay"

    def __init__(self, *answers: RawAnswer) -> None:
        self._answers = list(answers)

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        return [self._answers.pop(0) for _ in requests]




@pytest.mark.parametrize("first", [
    RawAnswer(text=V1_ANSWER.split("[OVERALL_WINNER]")[0]),  # no overall: incomplete
    RawAnswer(text=None),  # null content, as an empty answer
    RawAnswer(text=""),
], ids=["no-overall", "null-content", "empty"])
def test_incomplete_and_null_answers_are_retried(first: RawAnswer):
    setup = setup_of(output_format="paper_text", prompt="paper_v1", max_attempts=2,
                     constrained=False)
    [result] = judge_batch([item(setup, reference="Two dogs.", caption="Three dogs.")],
                           Replay(first, RawAnswer(text=V1_ANSWER)), setup)
    assert result.ok
    assert result.attempts == 2
    assert result.output == V1_EXPECTED


HALL_ANSWER = """[DIFFERENCE 1]
TYPE: contradiction
CONTENT: a blue car
CATEGORY: natural
VERIFICATION: false
REASON: the car is red, as the GT says
IS_HALLUCINATION: true

[DIFFERENCE 2]
TYPE: extra_info
CONTENT: a bicycle leaning on the wall
CATEGORY: natural
VERIFICATION: verified
REASON: the bicycle is visible
IS_HALLUCINATION: false

[DIFFERENCE 3]
TYPE: missing_fact
CONTENT: the shop sign reading OPEN
CATEGORY: design
VERIFICATION: missing
REASON: GT mentions the sign
IS_HALLUCINATION: false

[DIFFERENCE 4]
TYPE: contradiction
CONTENT: two people
CATEGORY: natural
VERIFICATION: verified
REASON: two people are visible; GT says three
IS_HALLUCINATION: false

[DIFFERENCE 5]
TYPE: extra_info
CONTENT: it might be raining
CATEGORY: natural
VERIFICATION: ambiguous
REASON: cannot tell
IS_HALLUCINATION: false
"""


def test_hall_vs_miss_records_of_their_own_kind():
    parsed = parse_hall_vs_miss(HALL_ANSWER)
    assert parsed == HallVsMissOutput.model_validate({"differences": [
        {"type": "contradiction", "content": "a blue car", "category": "natural",
         "verification": "false", "reason": "the car is red, as the GT says",
         "is_hallucination": True},
        {"type": "extra_info", "content": "a bicycle leaning on the wall", "category": "natural",
         "verification": "verified", "reason": "the bicycle is visible",
         "is_hallucination": False},
        {"type": "missing_fact", "content": "the shop sign reading OPEN", "category": "design",
         "verification": "missing", "reason": "GT mentions the sign", "is_hallucination": False},
        {"type": "contradiction", "content": "two people", "category": "natural",
         "verification": "verified", "reason": "two people are visible; GT says three",
         "is_hallucination": False},
        {"type": "extra_info", "content": "it might be raining", "category": "natural",
         "verification": "ambiguous", "reason": "cannot tell", "is_hallucination": False},
    ]})


def test_hall_vs_miss_as_claim_differences():
    output = parse_hall_vs_miss_judge_output(HALL_ANSWER)
    assert [(x.actor_claim is not None, x.reference_claim is not None, x.judgment.value)
            for x in output.differences] == [
        (True, False, "reference"), (True, False, "actor"), (False, True, "reference"),
        (True, False, "actor"), (True, False, "uncertain")]
    errors = [(x.actor_error.type if x.actor_error else None,
               x.reference_error.type if x.reference_error else None)
              for x in output.differences]
    assert errors == [("contradiction_hallucination", None), (None, None),
                      ("missing_fact_omission", None), (None, "contradiction_reference_error"),
                      (None, None)]
    assert output.overall is None
    assert parser_for("hall_vs_miss")(HALL_ANSWER) == output


@pytest.mark.parametrize(("text", "expected"), [
    ("**[Difference 1]**\n- **Type:** Extra Info\n- **Content:** a dog\n  on the left\n"
     "- **Verification:** FALSE.\n- Is Hallucination: yes\n",
     {"type": "extra_info", "content": "a dog on the left", "verification": "false",
      "is_hallucination": True}),
    ("```text\n[DIFFERENCE 1]\nTYPE: missing fact\nCONTENT: a cat\nVERIFICATION: missing\n```",
     {"type": "missing_fact", "content": "a cat", "verification": "missing"}),
    ("<think>[DIFFERENCE 1]\nTYPE: bogus</think>\n[DIFFERENCE 1]\nTYPE: contradiction\n"
     "CONTENT:\nred car\nVERIFICATION: verified (the car is red)\n",
     {"type": "contradiction", "content": "red car", "verification": "verified"}),
])
def test_hall_vs_miss_tolerates_what_the_paper_parser_tolerates(text: str,
                                                                expected: dict[str, Any]):
    [block] = parse_hall_vs_miss(text).differences
    assert block.model_dump(mode="json", exclude_defaults=True) == expected


def test_hall_vs_miss_without_differences():
    assert parse_hall_vs_miss("No differences found.").differences == []


@pytest.mark.parametrize(("text", "message"), [
    (None, "empty answer"),
    ("The captions agree.", "no \\[DIFFERENCE n\\] blocks"),
    ("[DIFFERENCE 1]\nTYPE: contradiction|extra_info|missing_fact\nCONTENT: x\n"
     "VERIFICATION: false", "unknown TYPE"),
    ("[DIFFERENCE 1]\nTYPE: contradiction\nCONTENT: x\nVERIFICATION: maybe", "unknown VERIF"),
    ("[DIFFERENCE 1]\nTYPE: contradiction\nCONTENT: x", "VERIFICATION is missing"),
    ("[DIFFERENCE 1]\nTYPE: contradiction\nVERIFICATION: false", "CONTENT is missing"),
    ("[DIFFERENCE 1]\nTYPE: contradiction\nTYPE: extra_info\nCONTENT: x\nVERIFICATION: false",
     "TYPE is given twice"),
    ("TYPE: contradiction\n[DIFFERENCE 1]\nTYPE: contradiction", "outside any"),
    ("[DIFFERENCE 1]\nTYPE: contradiction\nCONTENT: x\nVERIFICATION: false\n"
     "CATEGORY: nature", "unknown CATEGORY"),
    ("[DIFFERENCE 1]\nTYPE: contradiction\nCONTENT: x\nVERIFICATION: false\n"
     "IS_HALLUCINATION: perhaps", "unknown IS_HALLUCINATION"),
])
def test_hall_vs_miss_failures(text: str | None, message: str):
    with pytest.raises(JudgeOutputError, match=message):
        parse_hall_vs_miss(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("SCORE: 7\nRATIONALE: Accurate but misses the sign.", (7, "Accurate but misses the sign.")),
    ("**SCORE:** 10\n**RATIONALE:** Complete and correct.", (10, "Complete and correct.")),
    ("score: 0/10\nrationale: hallucinates a dog", (0, "hallucinates a dog")),
    ("<think>SCORE: 3 looks low</think>\nSCORE: 8", (8, "")),
])
def test_holistic_scores(text: str, expected: tuple[int, str]):
    assert parse_holistic(text) == HolisticOutput(score=expected[0], rationale=expected[1])


@pytest.mark.parametrize(("text", "message"), [
    (None, "empty answer"), ("", "empty answer"),
    ("RATIONALE: fine", "no `SCORE"), ("SCORE: 11", "outside 0-10"),
    ("SCORE: 7.5", "not a whole number"), ("SCORE: " + "9" * 5000, "outside 0-10"),
])
def test_holistic_failures(text: str | None, message: str):
    with pytest.raises(JudgeOutputError, match=message):
        parse_holistic(text)


@pytest.mark.parametrize(("prompt", "output_format", "ok"), [
    ("paper_v1", "paper_text", True), ("paper_v6", "paper_text", True),
    ("paper_hall_vs_miss", "hall_vs_miss", True), ("paper_v5", "json", False),
    ("paper_hall_vs_miss", "paper_text", False), ("single_pass", "paper_text", False),
    ("paper_holistic", "paper_text", False),
])
def test_a_prompt_is_selected_with_the_format_it_asks_for(prompt: str, output_format: str,
                                                           ok: bool):
    from claimdiff.config import load_config
    from claimdiff.errors import ConfigError

    overrides = {"judge.prompt": prompt, "judge.output_format": output_format}
    if ok:
        assert load_config(None, overrides).judge.prompt_name == prompt
    else:
        with pytest.raises(ConfigError, match="asks for the"):
            load_config(None, overrides)
