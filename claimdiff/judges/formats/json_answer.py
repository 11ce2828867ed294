"""The JSON judge format: raw judge text -> `JudgeOutput`, or a `JudgeOutputError` that says what
was wrong. The JSON helpers here also read verification answers (`formats.verification`)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from claimdiff.errors import JudgeOutputError
from claimdiff.schemas.judge import JudgeOutput

_FENCE = "```"


def extract_json(text: str) -> str:
    """The JSON object inside an answer: a code fence and prose around it are dropped.

    Linear in the answer: plain `find`s, no backtracking pattern (an answer of ten thousand
    unclosed fences must cost what its length costs).
    """
    start = text.find(_FENCE)
    if start >= 0:
        end = text.find(_FENCE, start + len(_FENCE))
        if end >= 0:
            inner = text[start + len(_FENCE):end]
            text = inner[4:] if inner[:4].lower() == "json" else inner
    start, end = text.find("{"), text.rfind("}")
    if start < 0:
        raise JudgeOutputError("answer contains no JSON object")
    if end < start:
        raise JudgeOutputError("answer's JSON object is not closed (truncated?)")
    return text[start : end + 1]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        raise JudgeOutputError(f"a JSON object repeats the key(s) {repeated[:5]}")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise JudgeOutputError(f"{name} is not a JSON number")


def load_answer_json(text: str) -> Any:
    """`json.loads` for untrusted answers: a repeated key (which `json` would silently resolve
    to its last value) and NaN/Infinity (which it would accept) fail the answer.

    `strict=False` accepts raw control characters inside strings, which grammar engines let
    through (xgrammar's JSON string rule does); they are harmless once parsed.
    """
    try:
        return json.loads(text, strict=False, object_pairs_hook=_unique_keys,
                          parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise JudgeOutputError(f"not valid JSON: {exc.msg} at char {exc.pos}") from exc
    except RecursionError as exc:
        raise JudgeOutputError("the JSON is nested too deeply") from exc


def describe_validation(exc: ValidationError, limit: int = 5) -> str:
    """Where and why an answer does not fit its schema, without echoing the answer's values."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)[:limit]
    )


def parse_judge_output(text: str | None) -> JudgeOutput:
    """Parse and validate one answer: a judge output, or `JudgeOutputError`.

    Validation requires what the decoding schema requires: an object with `differences` (a
    list) and `overall`, every difference with every key, nothing coerced. An object that is
    not a judge output (`{}`, a proxy's error object, `{"differences": null}`) is a failed
    attempt, never an answer with no differences.

    >>> parse_judge_output('Sure! {"differences": [], "overall": "tie"}').overall
    <Overall.TIE: 'tie'>
    """
    if text is None or not text.strip():
        raise JudgeOutputError("empty answer")
    data = load_answer_json(extract_json(text))
    if not isinstance(data, dict):
        raise JudgeOutputError(f"answer is a JSON {type(data).__name__}, not an object")
    try:
        return JudgeOutput.model_validate(data)
    except ValidationError as exc:
        raise JudgeOutputError(
            f"answer does not fit the judge schema: {describe_validation(exc)}") from exc
