"""Raw judge text -> `JudgeOutput`, or a `JudgeOutputError` that says what was wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from pydantic import ValidationError

from claimdiff.errors import JudgeOutputError
from claimdiff.schemas.judge import JudgeOutput

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_json(text: str) -> str:
    """The JSON object inside an answer: code fences and prose around it are dropped."""
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0:
        raise JudgeOutputError("answer contains no JSON object")
    if end < start:
        raise JudgeOutputError("answer's JSON object is not closed (truncated?)")
    return text[start : end + 1]


def parser_for(output_format: str) -> Callable[[str | None], JudgeOutput]:
    """The parser of a `judge.output_format`."""
    if output_format == "paper_text":
        from claimdiff.judges.paper_format import parse_paper_text

        return parse_paper_text
    if output_format == "hall_vs_miss":
        from claimdiff.judges.hall_vs_miss import parse_hall_vs_miss_judge_output

        return parse_hall_vs_miss_judge_output
    return parse_judge_output


def parse_judge_output(text: str | None) -> JudgeOutput:
    """Parse and validate one answer.

    `strict=False` accepts raw control characters inside strings, which grammar engines let
    through (xgrammar's JSON string rule does); they are harmless once parsed.

    >>> parse_judge_output('Sure! {"differences": [], "overall": "tie"}').overall
    <Overall.TIE: 'tie'>
    """
    if text is None or not text.strip():
        raise JudgeOutputError("empty answer")
    try:
        data = json.loads(extract_json(text), strict=False)
    except json.JSONDecodeError as exc:
        raise JudgeOutputError(f"not valid JSON: {exc.msg} at char {exc.pos}") from exc
    if not isinstance(data, dict):
        raise JudgeOutputError(f"answer is a JSON {type(data).__name__}, not an object")
    try:
        return JudgeOutput.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise JudgeOutputError(f"answer does not fit the judge schema: {problems}") from exc
