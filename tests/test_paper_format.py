from __future__ import annotations

from typing import Any

import pytest

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.formats.paper_text import parse_paper_text, render_paper_text
from claimdiff.schemas.judge import JudgeOutput

Error = tuple[str, str, int | None] | None


def d(aspect: str, actor: str | None, reference: str | None, judgment: str,
      actor_error: Error = None, reference_error: Error = None) -> dict[str, Any]:
    def error(e: Error) -> dict[str, Any] | None:
        return None if e is None else {"type": e[0], "detail": e[1], "severity": e[2]}

    return {"aspect": aspect, "actor_claim": actor, "reference_claim": reference,
            "judgment": judgment, "actor_error": error(actor_error),
            "reference_error": error(reference_error), "actor_span": None,
            "reference_span": None, "confidence": None}


def out(*differences: dict[str, Any], overall: str | None = "reference") -> JudgeOutput:
    return JudgeOutput.model_validate({"differences": list(differences), "overall": overall})


CANONICAL = """\
[DIFFERENCE 1]
ASPECT: number of dogs
CAPTION_A_CLAIM: two dogs
CAPTION_B_CLAIM: one dog
JUDGMENT: B
CAPTION_A_ERROR: count_mismatch | says two dogs | 3
CAPTION_B_ERROR: NA

[OVERALL_WINNER]
B
"""
DOGS = d("number of dogs", "two dogs", "one dog", "reference",
         actor_error=("count_mismatch", "says two dogs", 3))

VALID: list[tuple[str, str, JudgeOutput]] = [
    ("canonical", CANONICAL, out(DOGS)),
    ("crlf-prose-bold-bullets",
     "Sure! Here is my analysis of the two captions.\r\n\r\n**[Difference 1]**\r\n"
     "- **ASPECT:** number of dogs\r\n- **CAPTION_A_CLAIM:** two dogs\r\n"
     "- **Caption_B_Claim**: one dog\r\n- **JUDGMENT:** **B**\r\n"
     "- **CAPTION_A_ERROR:** count_mismatch | says two dogs | 3 (major)\r\n"
     "- **CAPTION_B_ERROR:** N/A\r\n\r\n**[OVERALL_WINNER]** B\r\n\r\nLet me know if ...\r\n",
     out(DOGS)),
    ("lowercase-spaced-keys-and-numbering",
     "### Difference #1\ncaption a claim: a red car\nAspect: car colour\n"
     "caption b claim: a blue car\njudgement: Caption A (the car is red)\n"
     "caption a error: none\ncaption b error: color_mismatch | says blue | 2/3\n\n"
     "DIFFERENCE 2:\n1. ASPECT: sky\n2. CAPTION_A_CLAIM: not mentioned\n"
     "3. CAPTION_B_CLAIM: a cloudy sky\n4. JUDGMENT: both supported\n5. CAPTION_A_ERROR: -\n"
     "6. CAPTION_B_ERROR: -\nOverall winner: A\n",
     out(d("car colour", "a red car", "a blue car", "actor",
           reference_error=("color_mismatch", "says blue", 2)),
         d("sky", None, "a cloudy sky", "both_supported"), overall="actor")),
    ("multiline-claims-and-unknown-keys",
     "[DIFFERENCE 1]\nASPECT: the\n  people in the background\nCAPTION_A_CLAIM: three people\n"
     "walking along the beach\nType: beachgoers\nREASONING: I count three people.\n"
     "this reasoning line is not part of the claim\nCAPTION_B_CLAIM: (none)\n"
     "**Confidence:** high\nJUDGMENT: A\nCAPTION_A_ERROR: NA\n"
     "CAPTION_B_ERROR: object_omission | misses the people | 2\n[OVERALL_WINNER]\n\nA\n"
     "Caption A is more complete.\n",
     out(d("the people in the background",
           "three people walking along the beach Type: beachgoers", None, "actor",
           reference_error=("object_omission", "misses the people", 2)), overall="actor")),
    ("error-encodings",
     "[DIFFERENCE 1]\nASPECT: sofa colour\nCAPTION_A_CLAIM: the sofa is red\n"
     "CAPTION_B_CLAIM: the sofa is green\nJUDGMENT: both_wrong\nCAPTION_A_ERROR:\n"
     "  - TYPE: color_hallucination\n  - DETAIL: the sofa\n    is blue\n  - SEVERITY: 3 (major)\n"
     "CAPTION_B_ERROR: type: color_error; detail: green, not blue; severity: NA\n\n"
     "[DIFFERENCE 2]\nASPECT: lamp\nCAPTION_A_CLAIM: a lamp\nCAPTION_B_CLAIM: N/A\n"
     "JUDGMENT: unclear\nCAPTION_A_ERROR: object_hallucination | 2\n"
     "CAPTION_B_ERROR: object_omission\nSEVERITY: 1\n\n"
     "[DIFFERENCE 3]\nASPECT: rug\nCAPTION_A_CLAIM: a striped rug\nCAPTION_B_CLAIM: a plain rug\n"
     "JUDGMENT: cannot determine\nCAPTION_A_ERROR: NA | NA | NA\nCAPTION_B_ERROR: no error\n",
     out(d("sofa colour", "the sofa is red", "the sofa is green", "both_wrong",
           ("color_hallucination", "the sofa is blue", 3),
           ("color_error", "green, not blue", None)),
         d("lamp", "a lamp", None, "uncertain", ("object_hallucination", "", 2),
           ("object_omission", "", 1)),
         d("rug", "a striped rug", "a plain rug", "uncertain"), overall=None)),
    ("claim-null-variants",
     "[DIFFERENCE 1]\nASPECT: a\nCAPTION_A_CLAIM:\nCAPTION_B_CLAIM: None of the dogs is brown\n"
     "JUDGMENT: B\n[DIFFERENCE 2]\nASPECT: b\nCAPTION_A_CLAIM: None (caption A is silent)\n"
     "CAPTION_B_CLAIM: \"None\"\nJUDGMENT: B\n[DIFFERENCE 3]\nASPECT: c\n"
     "CAPTION_A_CLAIM: Not mentioned in caption A.\nCAPTION_B_CLAIM: **a cat**\nJUDGMENT: B\n",
     out(d("a", None, "None of the dogs is brown", "reference"),
         d("b", None, "None", "reference"), d("c", None, "a cat", "reference"), overall=None)),
    ("value-on-next-line-and-header-rest",
     "[DIFFERENCE 1] ASPECT: dogs\nCAPTION_A_CLAIM: two dogs\nCAPTION_B_CLAIM: one dog\n"
     "JUDGMENT:\nB\nCAPTION_A_ERROR: count_mismatch | says two dogs | 3   (or NA)\n"
     "CAPTION_B_ERROR: NA   (or NA)\nOVERALL_WINNER: **Tie.**\n",
     out(d("dogs", "two dogs", "one dog", "reference", ("count_mismatch", "says two dogs", 3)),
         overall="tie")),
    ("code-fence-and-unnumbered-header",
     "```\n[DIFFERENCE]\nASPECT: number of dogs\nCAPTION_A_CLAIM: two dogs\n"
     "CAPTION_B_CLAIM: one dog\n"
     "JUDGMENT: B\nCAPTION_A_ERROR: count_mismatch | says two dogs | 3\nCAPTION_B_ERROR: NA\n"
     "[OVERALL_WINNER]: B\n```\n",
     out(DOGS)),
    ("pipe-inside-detail",
     "[DIFFERENCE 1]\nASPECT: sign\nCAPTION_A_CLAIM: a sign reading A|B\n"
     "CAPTION_B_CLAIM: a sign reading AB\nJUDGMENT: A\nCAPTION_A_ERROR: NA\n"
     "CAPTION_B_ERROR: text_error | drops the | between A and B | 2\n",
     out(d("sign", "a sign reading A|B", "a sign reading AB", "actor",
           reference_error=("text_error", "drops the | between A and B", 2)), overall=None)),
    ("no-differences-statement",
     "There are no notable visual differences.\n\n[OVERALL_WINNER]\nTie",
     out(overall="tie")),
    ("no-differences-block", "[DIFFERENCE 1]\nNo differences found.\n", out(overall=None)),
    ("no-differences-token", "NO_DIFFERENCES", out(overall=None)),
    ("keys-with-notes-possessives-and-dashes",
     "[DIFFERENCE 1]\nASPECT: number of dogs\nCAPTION_A_CLAIM (actor): two dogs\n"
     "Caption B's claim: one dog\nJUDGMENT (A/B): B\n"
     "CAPTION_A_ERROR (type | detail | severity): count_mismatch | says two dogs | 3\n"
     "CAPTION_B_ERROR - NA\n\n[OVERALL_WINNER]\nB\n",
     out(DOGS)),
    ("errors-separated-by-dashes-or-commas-and-bulleted-claims",
     "[DIFFERENCE 1]\nASPECT: number of dogs\nCAPTION_A_CLAIM: - two dogs\n"
     "CAPTION_B_CLAIM: one dog\nJUDGMENT: B\nCAPTION_A_ERROR: count_mismatch - says two dogs - 3\n"
     "CAPTION_B_ERROR: NA\n\n[DIFFERENCE 2]\nASPECT: number of dogs\n"
     "CAPTION_A_CLAIM: two dogs\nCAPTION_B_CLAIM: one dog\nJUDGMENT: B\n"
     "CAPTION_A_ERROR: count_mismatch, says two dogs, severity 3\nCAPTION_B_ERROR: NA\n\n"
     "[OVERALL_WINNER]\nB\n",
     out(DOGS, DOGS)),
    ("no-differences-were-found", "No significant differences were found.\n", out(overall=None)),
    ("captions-have-no-differences", "The captions have no differences.\n[OVERALL_WINNER] Tie",
     out(overall="tie")),
    ("two-word-type-before-a-severity-and-prose-that-names-a-key",
     "[DIFFERENCE 1]\nASPECT: number of dogs\nCAPTION_A_CLAIM: two dogs\n"
     "CAPTION_B_CLAIM: one dog\n\n"
     "Aspect ratio: the image is wide, which does not matter here.\n"
     "JUDGMENT: B\nCAPTION_A_ERROR: count mismatch, says two dogs, 3\nCAPTION_B_ERROR: NA\n\n"
     "[OVERALL_WINNER]\nB\n",
     out(d("number of dogs", "two dogs", "one dog", "reference",
           actor_error=("count mismatch", "says two dogs", 3)))),
    ("blocks-win-over-no-difference-prose",
     "There are no differences in colour, only in count.\n" + CANONICAL, out(DOGS)),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in VALID],
                         ids=[i for i, _, _ in VALID])
def test_valid_answers(text: str, expected: JudgeOutput) -> None:
    # answers without an overall verdict are read only when it is not required (below)
    assert parse_paper_text(text, require_overall=expected.overall is not None) == expected


def _block(n: int, body: str) -> str:
    return f"[DIFFERENCE {n}]\n{body}\n"


GOOD_BODY = "ASPECT: dogs\nCAPTION_A_CLAIM: two dogs\nCAPTION_B_CLAIM: one dog\nJUDGMENT: B"

INVALID: list[tuple[str, str | None, str]] = [
    ("none", None, "empty answer"),
    ("blank", " \r\n ", "empty answer"),
    ("prose-only", "The actor caption is better overall.", "no \\[DIFFERENCE n\\] blocks"),
    ("overall-only", "[OVERALL_WINNER] A", "no \\[DIFFERENCE n\\] blocks"),
    ("truncated-block", _block(1, GOOD_BODY) + _block(2, "ASPECT: sky\nCAPTION_A_CLAIM: blue"),
     "difference 2: JUDGMENT is missing"),
    ("unknown-judgment", _block(1, GOOD_BODY.replace("JUDGMENT: B", "JUDGMENT: A and B")),
     "difference 1: unknown JUDGMENT 'A and B'"),
    ("tie-is-no-judgment", _block(3, GOOD_BODY.replace("JUDGMENT: B", "JUDGMENT: Tie")),
     "difference 3: unknown JUDGMENT"),
    ("neither-claim",
     _block(1, "ASPECT: dogs\nCAPTION_A_CLAIM: N/A\nCAPTION_B_CLAIM: (none)\nJUDGMENT: A"),
     "difference 1: neither CAPTION_A_CLAIM nor CAPTION_B_CLAIM"),
    ("missing-aspect", _block(4, GOOD_BODY.replace("ASPECT: dogs", "")),
     "difference 4: ASPECT is missing"),
    ("unreadable-error", _block(1, GOOD_BODY + "\nCAPTION_A_ERROR: count_mismatch severity 3"),
     "cannot read error"),
    ("key-in-an-unknown-shape", _block(1, GOOD_BODY.replace("JUDGMENT: B", "JUDGMENT = B")),
     "cannot read the key of line 'JUDGMENT = B'"),
    ("claim-key-in-an-unknown-shape",
     _block(1, GOOD_BODY.replace("CAPTION_A_CLAIM: two dogs", "Caption A claim => two dogs")),
     "cannot read the key"),
    ("no-differences-inside-a-sentence",
     "Caption A says two dogs while B says one dog; no other visual differences.\n\n"
     "[OVERALL_WINNER] B", "no \\[DIFFERENCE n\\] blocks"),
    ("prose-block-ending-in-no-differences",
     _block(1, GOOD_BODY) + _block(2, "The dog is brown in A but black in B.\n"
                                     "No other differences."),
     "difference 2: JUDGMENT is missing"),
    ("error-without-type", _block(1, GOOD_BODY + "\nCAPTION_B_ERROR: detail: wrong; severity: 2"),
     "CAPTION_B_ERROR: has a detail or severity but no type"),
    ("duplicate-key", _block(1, GOOD_BODY + "\nJUDGMENT: A"), "JUDGMENT is given twice"),
    ("key-outside-block", "ASPECT: dogs\n" + _block(1, GOOD_BODY),
     "ASPECT: appears outside any"),
    ("key-after-overall", _block(1, GOOD_BODY) + "[OVERALL_WINNER] B\nCAPTION_A_ERROR: NA",
     "appears outside any"),
    ("bad-overall", _block(1, GOOD_BODY) + "[OVERALL_WINNER]\nC", "unknown OVERALL_WINNER 'C'"),
    ("conflicting-overall", _block(1, GOOD_BODY) + "OVERALL_WINNER: A\nOVERALL_WINNER: B",
     "conflicting OVERALL_WINNER"),
    ("overall-without-value", _block(1, GOOD_BODY) + "[OVERALL_WINNER]\n\n", "has no value"),
    ("aspect-too-long", _block(1, GOOD_BODY.replace("dogs\n", "x" * 200 + "\n", 1))
     + "[OVERALL_WINNER] B", "does not fit the judge schema: difference 1: aspect"),
    ("too-many-differences", "".join(_block(n, GOOD_BODY) for n in range(1, 66))
     + "[OVERALL_WINNER] B", "does not fit the judge schema: differences"),
    ("no-overall", _block(1, GOOD_BODY), "incomplete answer: no \\[OVERALL_WINNER\\]"),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in INVALID],
                         ids=[i for i, _, _ in INVALID])
def test_invalid_answers(text: str | None, message: str) -> None:
    with pytest.raises(JudgeOutputError, match=message):
        parse_paper_text(text)


ROUND_TRIP = [
    out(DOGS),
    out(overall="tie"),
    out(overall=None),
    out(d("sign text", 'the sign says "None"', "None", "both_wrong",
          ("text_error", "misreads | the sign", None), ("text_error", "", 1)),
        d("style", "**bold** style", '"quoted"', "both_supported"),
        d("sky", None, "not mentioned anywhere", "uncertain", actor_error=("omission", "", None)),
        d("cat", "a cat", None, "actor", reference_error=("object_omission", "no cat", 2)),
        overall="actor"),
]


@pytest.mark.parametrize("output", ROUND_TRIP, ids=["dogs", "empty-tie", "empty", "awkward"])
def test_render_parse_round_trip(output: JudgeOutput) -> None:
    text = render_paper_text(output)
    required = output.overall is not None
    assert parse_paper_text(text, require_overall=required) == output
    assert render_paper_text(parse_paper_text(text, require_overall=required)) == text


def test_render_is_the_canonical_form() -> None:
    assert render_paper_text(out(DOGS)) == CANONICAL


def test_keys_inside_a_claim_line_stay_claim_text() -> None:
    text = _block(1, "ASPECT: sign\nCAPTION_A_CLAIM: a sign reading JUDGMENT: A\n"
                     "CAPTION_B_CLAIM: [OVERALL_WINNER] A; CAPTION_A_ERROR: NA\nJUDGMENT: B\n"
                     "CAPTION_A_ERROR: text_error | misreads the sign | 2") + "[OVERALL_WINNER]\nB"
    output = parse_paper_text(text)
    (difference,) = output.differences
    assert difference.actor_claim == "a sign reading JUDGMENT: A"
    assert difference.reference_claim == "[OVERALL_WINNER] A; CAPTION_A_ERROR: NA"
    assert difference.judgment == "reference"
    assert difference.actor_error is not None
    assert difference.actor_error.severity == 2
    assert output.overall == "reference"


def test_a_key_on_its_own_line_cannot_silently_flip_a_judgment() -> None:
    # a wrapped claim whose continuation looks like a key is a key: it collides, the answer fails
    text = _block(1, "ASPECT: sign\nCAPTION_A_CLAIM: a sign reading\nJUDGMENT: A\n"
                     "CAPTION_B_CLAIM: a blank sign\nJUDGMENT: B")
    with pytest.raises(JudgeOutputError, match="JUDGMENT is given twice"):
        parse_paper_text(text)


def test_render_flattens_multiline_claims_so_they_cannot_inject_keys() -> None:
    output = out(d("sign", "a sign reading\nJUDGMENT: A", "a blank sign", "reference"))
    parsed = parse_paper_text(render_paper_text(output))
    assert parsed.differences[0].actor_claim == "a sign reading JUDGMENT: A"
    assert parsed.differences[0].judgment == "reference"


def test_separators_are_found_as_the_regex_finds_them() -> None:
    """`_separators` replaces a regex that is quadratic on long runs of whitespace: same spans
    on every string of a small alphabet of separators, whitespace and letters."""
    import random
    import re

    from claimdiff.judges.formats.paper_text import _separators

    regex = re.compile(r"\s+[-–—]\s+|\s*[,;]\s+")
    alphabet = [" ", "\t", "\u00a0", "-", "–", "—", ",", ";", "a", "b"]
    generator = random.Random(0)
    for _ in range(20_000):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 10)))
        assert _separators(text) == [(m.start(), m.end()) for m in regex.finditer(text)], text
