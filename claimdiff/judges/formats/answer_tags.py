"""`<think>` / `<answer>` tags, in captions and in judge answers.

Captions from a reasoning policy come as `<think>...</think><answer>...</answer>`. The released
ClaimDiff-RL code judges the answer text: the content of the first `<answer>...</answer>`
(case-insensitive, stripped), or the whole caption stripped where there is none
(`answer_text`); its format reward asks for both blocks (`has_think_and_answer`) or, without
REQUIRE_THINK_BLOCK, a non-empty answer text.

Judge answers from a reasoning judge carry their reasoning the same way. The released code
reads every line of a judge answer, reasoning included; claimdiff reads only the answer
(`judge_answer`): the text after the last `</think>`, and within it the first `<answer>` block
where there is one. A `<think>` that never closes is an unfinished answer.

Everything here is linear in the text's length: tags are found with literal searches, never
with a lazy `.*?` that would rescan the text from every unmatched opening tag.
"""

from __future__ import annotations

import re

from claimdiff.errors import JudgeOutputError

_ANSWER_OPEN = re.compile(re.escape("<answer>"), re.IGNORECASE)
_ANSWER_CLOSE = re.compile(re.escape("</answer>"), re.IGNORECASE)
_THINK_OPEN = re.compile(re.escape("<think>"), re.IGNORECASE)
_THINK_CLOSE = re.compile(re.escape("</think>"), re.IGNORECASE)


def _block(text: str, opening: re.Pattern[str], closing: re.Pattern[str]) -> str | None:
    """The content of the first `opening ... closing` block, or None.

    The first opening tag and the first closing tag after it: exactly what a leftmost lazy
    match `<tag>(.*?)</tag>` finds (no closing tag after the first opening means none after a
    later one either).
    """
    start = opening.search(text)
    if start is None:
        return None
    end = closing.search(text, start.end())
    if end is None:
        return None
    return text[start.end():end.start()]


def answer_text(caption: str) -> str:
    """The caption the released code judges: the first `<answer>` block's content, stripped,
    else the whole caption stripped.

    >>> answer_text("<think>two dogs?</think>\\n<answer>\\nTwo dogs on a sofa.\\n</answer>")
    'Two dogs on a sofa.'
    >>> answer_text(" A cat. ")
    'A cat.'
    """
    inside = _block(caption, _ANSWER_OPEN, _ANSWER_CLOSE)
    return (inside if inside is not None else caption).strip()


def has_think_and_answer(caption: str) -> bool:
    """Both a `<think>...</think>` and an `<answer>...</answer>` block (in any order)."""
    return (_block(caption, _THINK_OPEN, _THINK_CLOSE) is not None
            and _block(caption, _ANSWER_OPEN, _ANSWER_CLOSE) is not None)


def judge_answer(text: str) -> str:
    """A judge answer without its reasoning: after the last `</think>`, inside `<answer>`.

    >>> judge_answer("<think>A says two dogs.</think>\\n[DIFFERENCE 1] ...")
    '\\n[DIFFERENCE 1] ...'
    """
    closings = list(_THINK_CLOSE.finditer(text))
    if closings:
        text = text[closings[-1].end():]
    elif _THINK_OPEN.search(text):
        raise JudgeOutputError("the answer's <think> block never closes (cut short?)")
    inside = _block(text, _ANSWER_OPEN, _ANSWER_CLOSE)
    return inside if inside is not None else text
