"""The holistic baseline's answer (`SCORE: <0-10>` / `RATIONALE: ...`) <-> `HolisticOutput`.

The released code asks one 0-10 score of the whole caption (prompt `paper_holistic`) and takes
the first `SCORE:` followed by digits; an answer without one, or with a score outside 0-10,
is retried. claimdiff reads the same, and also tolerates markdown around the key
(`**SCORE:** 7`), a `/10` after the number and `<think>` reasoning before the answer. A
fractional score (`7.5`) fails rather than being cut to 7 as the released regex would; so does a
number of more than three digits (no unbounded integer parsing of judge text).
"""

from __future__ import annotations

import re

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.formats.answer_tags import judge_answer
from claimdiff.schemas.baselines import HolisticOutput
from claimdiff.schemas.judge import MAX_DETAIL_CHARS

__all__ = ["parse_holistic"]

_SCORE = re.compile(r"score[*_`\s]*[:：][*_`\s]*(?P<n>\d{1,4})(?P<frac>[.,]\d)?", re.IGNORECASE)
_RATIONALE = re.compile(r"rationale[*_`\s]*[:：][*_`\s]*(?P<text>[^\n]*)", re.IGNORECASE)


def parse_holistic(text: str | None) -> HolisticOutput:
    """Parse one holistic answer.

    >>> parse_holistic("SCORE: 7\\nRATIONALE: Accurate but misses the sign.")
    HolisticOutput(score=7, rationale='Accurate but misses the sign.')
    """
    if text is None or not text.strip():
        raise JudgeOutputError("empty answer")
    text = judge_answer(text)
    found = _SCORE.search(text)
    if found is None:
        raise JudgeOutputError("answer has no `SCORE: <0-10>` line")
    if found["frac"] is not None:
        raise JudgeOutputError(f"score {found.group(0)!r} is not a whole number")
    score = int(found["n"])
    if not 0 <= score <= 10:
        raise JudgeOutputError(f"score {score} is outside 0-10")
    rationale = _RATIONALE.search(text)
    reason = rationale["text"].strip().strip("*_`").strip() if rationale else ""
    return HolisticOutput(score=score, rationale=reason[:MAX_DETAIL_CHARS])
