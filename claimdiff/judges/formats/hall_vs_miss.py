"""The released `hall_vs_miss` judge format <-> `HallVsMissOutput`, and into `JudgeOutput`.

The prompt (`prompts/paper_hall_vs_miss.txt`) asks for blocks::

    [DIFFERENCE 1]
    TYPE: contradiction|extra_info|missing_fact
    CONTENT: <content from predicted caption>
    CATEGORY: natural|design
    VERIFICATION: verified|false|ambiguous|missing
    REASON: <reason for the difference>
    IS_HALLUCINATION: true|false

`parse_hall_vs_miss` reads them into records of their own kind, tolerating what the paper-text
parser tolerates around keys (case, bold, bullets, numbering, `-`/space for `_`, prose and code
fences around the blocks, `<think>` reasoning); CONTENT and REASON may wrap onto the next plain
lines. Values: TYPE and VERIFICATION are required and must be one of their words (spaces or
hyphens for the underscore, any case, punctuation after the word allowed); CATEGORY and
IS_HALLUCINATION (`true`/`false`/`yes`/`no`) are optional but must be readable when given;
CONTENT must not be empty. A key given twice in a block, a key before the first header, or no
block at all (unless a line says there are no differences) fails the whole answer
(`JudgeOutputError`), which is then retried; the released parser instead counts a block with an
unreadable TYPE or VERIFICATION as a difference that is neither a hallucination nor a missing
fact.

`to_judge_output` maps each block onto one claim difference, so hall_vs_miss runs go through the
same outcomes, rewards and verification as any other format:

| TYPE | VERIFICATION | claim | judgment | error label |
|---|---|---|---|---|
| contradiction, extra_info | verified | actor | A | none (*) |
| contradiction, extra_info | false | actor | B | actor `<type>_hallucination` |
| contradiction, extra_info | ambiguous, missing | actor | uncertain | none |
| missing_fact | any | reference | B | actor `missing_fact_omission` |

(*) a verified contradiction says the reference is wrong: reference
`contradiction_reference_error`.

so `labels` counting gives the released counts exactly: hallucinations = blocks verified false,
omissions = missing facts, differences = every block.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.formats.answer_tags import judge_answer
from claimdiff.judges.formats.paper_text import difference_header
from claimdiff.schemas.baselines import (
    HallType,
    HallVerification,
    HallVsMissDifference,
    HallVsMissOutput,
)
from claimdiff.schemas.judge import MAX_ASPECT_CHARS, MAX_DETAIL_CHARS, JudgeOutput

__all__ = ["parse_hall_vs_miss", "parse_hall_vs_miss_judge_output", "to_judge_output"]

TYPE, CONTENT, CATEGORY, VERIFICATION, REASON, IS_HALLUCINATION = (
    "type", "content", "category", "verification", "reason", "is_hallucination")
_MULTILINE = frozenset({CONTENT, REASON})
# possessive runs (`*+`): see paper_format; a line of spaces must not be rescanned per split
_KEY = re.compile(
    r"^(?:[#>]++\s*+)?(?:(?:[-*•+]|\d{1,3}[.)])\s++)?[*_`]*+\s*+"
    r"(?P<key>type|content|category|verification|reason|is[\s_-]?hallucination)"
    r"(?:\s*+[*_`]++)?\s*+[:：][*_`]*+\s*(?P<value>.*)$",
    re.IGNORECASE,
)
_WORD = re.compile(r"^[*_`\"']*(?P<word>[a-z]+(?:[\s_-][a-z]+)?)[*_`\"']*(?:$|[\s(\[:;,.!]|[-–—])",
                   re.IGNORECASE)
_NO_DIFFERENCES = re.compile(
    r"^[-*#>\s]*(?:there\s+(?:are|were)\s+)?no\s+(?:[a-z-]+\s+){0,2}?differences?\b"
    r"(?:\s+(?:were\s+)?found)?[\s.!*_]*$",
    re.IGNORECASE,
)
_BOOLEANS = {"true": True, "yes": True, "false": False, "no": False}


def _word(value: str, where: str, key: str, allowed: set[str]) -> str:
    match = _WORD.match(value.strip())
    word = re.sub(r"[\s-]+", "_", match["word"].lower()) if match else None
    if word not in allowed:
        raise JudgeOutputError(
            f"{where}: unknown {key.upper()} {value.strip()[:60]!r} (expected "
            f"{' | '.join(sorted(allowed))})")
    return word


def _blocks(text: str) -> list[dict[str, list[str]]]:
    """The raw key values of every block; a wrapped CONTENT or REASON continues over the next
    plain lines, a key with nothing after its colon takes the next plain line."""
    blocks: list[dict[str, list[str]]] = []
    block: dict[str, list[str]] | None = None
    open_value: list[str] | None = None  # the value the next plain line extends
    open_multiline = False
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        rest = difference_header(line) if line else None
        if rest is not None:
            block = {}
            blocks.append(block)
            open_value = None
            line = rest.strip()
            if not line:
                continue
        key = _KEY.match(line) if line else None
        if key is not None:
            name = re.sub(r"[\s-]+", "_", key["key"].lower())
            if block is None:
                raise JudgeOutputError(f"{name.upper()}: appears outside any [DIFFERENCE n] block")
            if name in block:
                raise JudgeOutputError(f"difference {len(blocks)}: {name.upper()} is given twice")
            value = key["value"].strip()
            block[name] = [value] if value else []
            open_multiline = name in _MULTILINE
            open_value = block[name] if open_multiline or not value else None
        elif not line:
            open_value = None  # a blank line ends a wrapped value
        elif open_value is not None:
            open_value.append(line)
            if not open_multiline:
                open_value = None
    return blocks


def _difference(block: dict[str, list[str]], number: int) -> dict[str, Any]:
    where = f"difference {number}"

    def value(key: str) -> str:
        return " ".join(part for part in block.get(key, []) if part)

    for key in (TYPE, VERIFICATION):
        if not value(key):
            raise JudgeOutputError(f"{where}: {key.upper()} is missing")
    content = value(CONTENT).strip("*_` ")
    if not content:
        raise JudgeOutputError(f"{where}: CONTENT is missing")
    record: dict[str, Any] = {
        "type": _word(value(TYPE), where, TYPE, {t.value for t in HallType}),
        "verification": _word(value(VERIFICATION), where, VERIFICATION,
                              {v.value for v in HallVerification}),
        "content": content,
        "reason": value(REASON).strip("*_` "),
    }
    if value(CATEGORY):
        record["category"] = _word(value(CATEGORY), where, CATEGORY, {"natural", "design"})
    if value(IS_HALLUCINATION):
        flag = _word(value(IS_HALLUCINATION), where, IS_HALLUCINATION, set(_BOOLEANS))
        record["is_hallucination"] = _BOOLEANS[flag]
    return record


def parse_hall_vs_miss(text: str | None) -> HallVsMissOutput:
    """Parse one `hall_vs_miss` answer (see the module docstring).

    >>> answer = '''[DIFFERENCE 1]
    ... TYPE: contradiction
    ... CONTENT: a blue car
    ... CATEGORY: natural
    ... VERIFICATION: false
    ... REASON: the car is red
    ... IS_HALLUCINATION: true'''
    >>> block = parse_hall_vs_miss(answer).differences[0]
    >>> block.type, block.verification, block.is_hallucination
    (<HallType.CONTRADICTION: 'contradiction'>, <HallVerification.FALSE: 'false'>, True)
    """
    if text is None or not text.strip():
        raise JudgeOutputError("empty answer")
    text = judge_answer(text)
    blocks = _blocks(text)
    if not blocks and not any(_NO_DIFFERENCES.match(line.strip()) for line in text.splitlines()):
        raise JudgeOutputError(
            "answer has no [DIFFERENCE n] blocks and does not say there are no differences")
    records = [_difference(block, n) for n, block in enumerate(blocks, start=1) if block]
    try:
        return HallVsMissOutput.model_validate({"differences": records})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise JudgeOutputError(f"answer does not fit the hall_vs_miss schema: {problems}") from exc


def _error(type_: str, detail: str) -> dict[str, Any]:
    # the format states no severity: the keyword rule decides it
    return {"type": type_, "detail": detail, "severity": None}


def _judged(block: HallVsMissDifference) -> dict[str, Any]:
    aspect = f"{block.type.value} ({block.category.value})" if block.category else block.type.value
    detail = block.reason[:MAX_DETAIL_CHARS]
    # the format has no spans or confidences: absent, said so explicitly
    difference: dict[str, Any] = {"aspect": aspect[:MAX_ASPECT_CHARS], "actor_span": None,
                                  "reference_span": None, "confidence": None,
                                  "actor_error": None, "reference_error": None}
    if block.type is HallType.MISSING_FACT:
        return {**difference, "actor_claim": None, "reference_claim": block.content,
                "judgment": "reference",
                "actor_error": _error("missing_fact_omission", detail)}
    judgment = {HallVerification.VERIFIED: "actor", HallVerification.FALSE: "reference"}.get(
        block.verification, "uncertain")
    difference.update(actor_claim=block.content, reference_claim=None, judgment=judgment)
    if judgment == "reference":
        difference["actor_error"] = _error(f"{block.type.value}_hallucination", detail)
    elif judgment == "actor" and block.type is HallType.CONTRADICTION:
        difference["reference_error"] = _error("contradiction_reference_error", detail)
    return difference


def to_judge_output(output: HallVsMissOutput) -> JudgeOutput:
    """One claim difference per block (table in the module docstring), no overall verdict."""
    return JudgeOutput.model_validate(
        {"differences": [_judged(block) for block in output.differences], "overall": None})


def parse_hall_vs_miss_judge_output(text: str | None) -> JudgeOutput:
    """The parser of `judge.output_format: hall_vs_miss`: the blocks as claim differences."""
    return to_judge_output(parse_hall_vs_miss(text))
