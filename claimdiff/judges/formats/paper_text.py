"""The plain-text judge format of the ClaimDiff-RL paper's released code <-> `JudgeOutput`.

A judge prompted like the paper (or fine-tuned on its outputs) answers in `[DIFFERENCE n]` blocks
rather than JSON. `parse_paper_text` reads that text tolerantly into the same pydantic records as
`parse_judge_output`, so everything downstream is unchanged; `render_paper_text` writes the
canonical form (the inverse, for round-trip tests and for fine-tuning targets).

Canonical form (what `render_paper_text` writes)::

    [DIFFERENCE 1]
    ASPECT: number of dogs
    CAPTION_A_CLAIM: two dogs
    CAPTION_B_CLAIM: one dog
    JUDGMENT: B
    CAPTION_A_ERROR: count_mismatch | says two dogs | 3
    CAPTION_B_ERROR: NA

    [OVERALL_WINNER]
    B

Caption A is the actor, caption B the reference. A zero-difference answer renders as
`No differences.` followed by the overall block.

The released prompts (`paper_v1` ... `paper_v6`) ask for the error as sub-lines under the key,
`ERROR_TYPE:` / `ERROR_DETAIL:` (and, from v5, `SEVERITY_LEVEL:`), with `ERROR_TYPE: NONE`,
`ERROR_DETAIL: No error.`, `SEVERITY_LEVEL: NA` for a side without an error: all read here.

Accepted grammar (everything is line based; CRLF/CR line ends are normalised):

* Reasoning: a `<think>...</think>` block is not read (the text after the last `</think>` is);
  within what remains, the first `<answer>...</answer>` block is the answer where there is one.
  A `<think>` that never closes fails the answer.

* Difference header: a line `[DIFFERENCE n]` (any case, `#n`, `No. n`, `_n`, no number at all),
  or an unbracketed `DIFFERENCE n` alone or followed by `:`, `.`, `)` or a dash (then anything).
  Markdown heading marks, bullets and `**`/`__` around it are allowed. Text after a bracketed
  header on the same line is read as if it were the next line. The number is used in error
  messages only: blocks are kept in document order.
* Key line: `KEY: value` at the start of a line (after optional `#`, a bullet `- * • +` or `1.` /
  `1)`, and markdown emphasis around the key, e.g. `**ASPECT:**` or `**ASPECT**:`). Keys are
  case-insensitive, spaces, hyphens and underscores are interchangeable, a possessive is dropped
  (`Caption A's claim`), and a note in brackets may follow the key (`CAPTION_A_CLAIM (actor):`,
  `JUDGMENT [A/B]:`). After a known difference key, ` - ` separates like the colon (`CAPTION_B_ERROR
  - NA`). A line that starts with a difference key followed by another separator (`JUDGMENT = B`,
  `Caption A claim => two dogs`) fails the answer rather than being read as prose; a key word
  followed by more words (`Aspect ratio: ...`) is prose. Known keys (aliases in brackets): ASPECT;
  CAPTION_A_CLAIM (CLAIM_A, A_CLAIM); CAPTION_B_CLAIM (CLAIM_B, B_CLAIM); JUDGMENT (JUDGEMENT,
  VERDICT); CAPTION_A_ERROR (ERROR_A, A_ERROR); CAPTION_B_ERROR (ERROR_B, B_ERROR); OVERALL_WINNER
  (WINNER). Under an error key only: TYPE (ERROR_TYPE), DETAIL (DETAILS, ERROR_DETAIL), SEVERITY
  (ERROR_SEVERITY, SEVERITY_LEVEL). Only the first colon splits a line, so `CAPTION_A_CLAIM: a
  sign reading JUDGMENT: A` is a claim. Any other UPPER_CASE key of 3+ characters, or any
  emphasised key (`**Reasoning:**`), is an unknown key: ignored, but it ends the value before it.
  Other `word: text` lines are plain text.
* Values: ASPECT, the claims and DETAIL continue over the following plain-text lines until a
  blank line, a key or a header (joined with single spaces). The other keys take one line; a key
  with nothing after the colon takes the next line if it is plain text. A value wrapped in
  double quotes is taken literally (quotes removed, no further interpretation); otherwise a
  markdown emphasis wrapper (`**x**`, `*x*`, `` `x` ``) is removed.
* Claims: a leading bullet (`- two dogs`) is layout and dropped. Empty, `NA`, `N/A`, `None`, `null`,
  `-`, `—`, `(none)` (optionally followed by punctuation and a comment, e.g. `None (not mentioned)`)
  or a phrase starting `not mentioned`, `not stated`, `not described`, `not specified`, `no claim`,
  `no mention`, `silent`, `omitted` mean that caption is silent (null). `None of the dogs ...` is a
  claim.
* JUDGMENT: `A` -> actor, `B` -> reference, `both_wrong`, `both_supported` (spaces or hyphens
  instead of the underscore are fine), `uncertain` / `unclear` / `unknown` / `undetermined` /
  `cannot (be) determine(d)` / `can't determine` -> uncertain; an optional `Caption ` prefix;
  after the value only the end of the line or punctuation (`(`, `[`, `:`, `;`, `,`, `.`, `!`, a
  dash) and then anything: `A (the image shows two dogs)` is A, `A and B agree` is rejected.
* Errors (CAPTION_A_ERROR / CAPTION_B_ERROR): `NA`-like (as for claims, plus `no error(s)`) is no
  error. Otherwise one of: `type | detail | severity` (first part the type, last part the severity,
  everything in between, `|` included, the detail; with two parts `type | severity` when the second
  looks like a severity, else `type | detail`); `type: x; detail: y; severity: 2` (labels in any
  order, separated by `;`, `,` or `|`; must start the value); `type - detail - severity` or `type,
  detail, severity` when the type is one word, or up to three words before a severity (the severity
  part may be left out, or read `severity 3`); a bare `type` (a bare value mentioning `severity` is
  rejected rather than stored as a type); or the value empty with `TYPE:` / `DETAIL:` / `SEVERITY:`
  sub-lines after the key (they may also complete an inline value; the same field given both ways
  differently is an error; a no-error type given both ways is not). A type that says there is no
  error (`NONE`, `NA`, `N/A`, `-`, `no error(s)`) is no error, whatever the detail ("No error.",
  "not applicable") and the severity say; an empty type with a detail or severity is an error.
  NA-like details are empty.
* Severity: `1`, `2` or `3`, optionally `/3`, a parenthesised note or a severity word (`3
  (major)`, `2 - secondary`, `1 minor`); `NA`-like or empty -> null. Anything else (`4`, `0`,
  `high`, `2.5`) -> null, with the text kept in `ErrorLabel.severity_raw`: the keyword rule
  decides, as the released code falls back to its rule.
* Overall: a `[OVERALL_WINNER]` header with the value after it on the same line or on the next
  non-blank line, or an `OVERALL_WINNER:` key line. `A` -> actor, `B` -> reference, `Tie` /
  `draw` / `tied` / `equal` -> tie (same trailing rules as JUDGMENT). The overall ends the
  current difference block. An answer without one is incomplete and fails, as the released
  validator fails it (`parse_paper_text(..., require_overall=False)` reads it with a null
  overall).
* Zero blocks: accepted (empty list) only when a line of the text says so and nothing else (`No
  differences.`, `There are no notable visual differences.`, `No significant differences were
  found.`, `The captions have no differences.`, `0 differences`, `NO_DIFFERENCES`); a block with no
  keys whose every line says so is dropped the same way. The same words inside a longer sentence
  ("...; no other differences") do not count: such an answer fails rather than losing what the
  sentence described.

Errors (`JudgeOutputError`; the whole answer fails, no block is dropped silently): an empty answer;
no blocks and no no-difference statement; a line shaped like a key that cannot be read; a difference
key before the first header; a key given twice in one block; a block without ASPECT or JUDGMENT,
with an unknown JUDGMENT or with neither claim; an unrecognised overall value; conflicting
OVERALL_WINNER values; an `[OVERALL_WINNER]` without a value, or none at all; an error with a
detail or severity but no type; an unclosed `<think>`. Schema violations (lengths, more than 64
differences) come from `JudgeOutput.model_validate`.

Time is linear in the answer's length: runs of whitespace and markup are matched possessively and
separators are found in one pass (a judge answer is untrusted text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.formats.answer_tags import judge_answer
from claimdiff.schemas.judge import (
    MAX_TYPE_CHARS,
    ErrorLabel,
    JudgedDifference,
    JudgeOutput,
    Judgment,
    Overall,
)

__all__ = ["difference_header", "parse_paper_text", "render_paper_text"]

ASPECT = "ASPECT"
CLAIM_A = "CAPTION_A_CLAIM"
CLAIM_B = "CAPTION_B_CLAIM"
JUDGMENT = "JUDGMENT"
ERROR_A = "CAPTION_A_ERROR"
ERROR_B = "CAPTION_B_ERROR"
OVERALL = "OVERALL_WINNER"
TYPE = "TYPE"
DETAIL = "DETAIL"
SEVERITY = "SEVERITY"

_ALIASES: dict[str, str] = {
    "ASPECT": ASPECT,
    "CAPTION_A_CLAIM": CLAIM_A, "CLAIM_A": CLAIM_A, "A_CLAIM": CLAIM_A,
    "CAPTION_B_CLAIM": CLAIM_B, "CLAIM_B": CLAIM_B, "B_CLAIM": CLAIM_B,
    "JUDGMENT": JUDGMENT, "JUDGEMENT": JUDGMENT, "VERDICT": JUDGMENT,
    "CAPTION_A_ERROR": ERROR_A, "ERROR_A": ERROR_A, "A_ERROR": ERROR_A,
    "CAPTION_B_ERROR": ERROR_B, "ERROR_B": ERROR_B, "B_ERROR": ERROR_B,
    "OVERALL_WINNER": OVERALL, "WINNER": OVERALL,
    "TYPE": TYPE, "ERROR_TYPE": TYPE,
    "DETAIL": DETAIL, "DETAILS": DETAIL, "ERROR_DETAIL": DETAIL,
    "SEVERITY": SEVERITY, "ERROR_SEVERITY": SEVERITY, "SEVERITY_LEVEL": SEVERITY,
    "ERROR_SEVERITY_LEVEL": SEVERITY,
}  # fmt: skip
_DIFFERENCE_KEYS = frozenset({ASPECT, CLAIM_A, CLAIM_B, JUDGMENT, ERROR_A, ERROR_B})
_ERROR_SUBKEYS = frozenset({TYPE, DETAIL, SEVERITY})
# free-text values may wrap onto following lines; the others are one token and take one line
_MULTILINE = frozenset({ASPECT, CLAIM_A, CLAIM_B, DETAIL})

_JUDGMENT_TO_PAPER = {
    Judgment.ACTOR: "A",
    Judgment.REFERENCE: "B",
    Judgment.BOTH_WRONG: "both_wrong",
    Judgment.BOTH_SUPPORTED: "both_supported",
    Judgment.UNCERTAIN: "uncertain",
}
_OVERALL_TO_PAPER = {Overall.ACTOR: "A", Overall.REFERENCE: "B", Overall.TIE: "Tie"}

# --- line shapes -------------------------------------------------------------------------------

# Runs of whitespace and markup are matched possessively (`*+`, `++`): nothing after them can
# start with what they consume, so giving some back never finds a match, and without it a long
# run (a line of 10,000 spaces) would be rescanned once per split: quadratic in the line.
_EMPH = r"[*_`]*+"
# heading marks, quote marks, bullets and list numbers that may precede a header or a key
_PREFIX = r"^(?:[#>]++\s*+)?(?:(?:[-*•+]|\d{1,3}[.)])\s++)?"
_BRACKET_HEADER = re.compile(
    _PREFIX + _EMPH + r"\[\s*+(?P<name>[^\[\]]{1,40}?)\s*+\]" + _EMPH
    + r"\s*(?:[:.\-–—]\s*)?(?P<rest>.*)$"
)
_DIFFERENCE_NAME = re.compile(
    r"^difference[\s_-]*(?:#|no\.?|number)?\s*(?P<num>\d{1,4})?$", re.IGNORECASE
)
# unbracketed headers need a number and nothing but punctuation right after it, so that prose
# such as "Difference 2 is minor" is not a header
_BARE_HEADER = re.compile(
    _PREFIX + _EMPH + r"difference[\s_-]*+(?:#|no\.?|number)?\s*+(?P<num>\d{1,4})" + _EMPH
    + r"\s*+(?:[:.)\-–—]" + _EMPH + r"(?P<rest>.*))?$",
    re.IGNORECASE,
)
# a note after a key is part of the key line: `CAPTION_A_CLAIM (actor):`, `JUDGMENT [A/B]:`
_KEY_NOTE = r"(?:\s*+(?:\([^()]{0,40}\)|\[[^\[\]]{0,40}\]))?"


def _key_line_pattern(separator: str) -> re.Pattern[str]:
    # whitespace right before the separator is the separator's (a dash needs some); before
    # markup, the markup's
    return re.compile(
        _PREFIX + r"(?P<emph>[*_`]*+)\s*+(?P<key>[A-Za-z][A-Za-z0-9 _/'’-]{0,39}?)" + _KEY_NOTE
        + r"(?:\s*+[*_`]++)?" + separator + _EMPH + r"\s*(?P<value>.*)$")


_KEY_LINE = _key_line_pattern(r"\s*+[:：]")
# `CAPTION_A_CLAIM - two dogs`: a dash separates too, but only after a known key
_DASH_KEY_LINE = _key_line_pattern(r"\s++[-–—]\s++")
# the start of a line that names a difference key, however it is dressed: a line starting so
# that is not read as a key is an answer in a shape this parser does not know, not prose
_KEYISH = re.compile(
    _PREFIX + r"[*_`]*+\s*+(?:caption[\s_-]*+[ab](?:'s|’s)?[\s_-]*+(?:claim|error)"
    r"|claim[\s_-]*+[ab]|error[\s_-]*+[ab]|judge?ment|aspect|overall[\s_-]*+winner)" + _KEY_NOTE
    + r"[*_`]*+\s*+(?:=>?|->|→|::)",
    re.IGNORECASE,
)
_UNKNOWN_KEY = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")

# --- value shapes ------------------------------------------------------------------------------

# after a one-token value: the end, or punctuation and then a comment; not another word ("A and B")
_TOKEN_END = r"(?=$|\s*[(\[:;,.!]|\s*[-–—])"
_NONE_WORD = re.compile(r"^(?:none|n/?a|null|nil|-+|—|–)" + _TOKEN_END, re.IGNORECASE)
_SILENT_PHRASE = re.compile(
    r"^(?:not\s+(?:mentioned|stated|described|specified|given|present)|no\s+(?:claim|mention)"
    r"|silent|omitted|unmentioned)\b",
    re.IGNORECASE,
)
_NO_ERROR_PHRASE = re.compile(r"^no\s+errors?\b", re.IGNORECASE)
_JUDGMENT_VALUE = re.compile(
    r"^(?:caption[\s_-]*)?(?P<v>both[\s_-]*wrong|both[\s_-]*supported|uncertain|unclear|unknown"
    r"|undetermined|cannot[\s_-]*(?:be[\s_-]*)?determined?|can'?t[\s_-]*determine|a|b)"
    + _TOKEN_END,
    re.IGNORECASE,
)
_OVERALL_VALUE = re.compile(
    r"^(?:caption[\s_-]*)?(?P<v>a|b|tie|tied|draw|equal)" + _TOKEN_END, re.IGNORECASE
)
_SEVERITY_VALUE = re.compile(
    r"^(?:severity\s*+[:=]?\s*+)?(?P<n>[123])(?![.,]\d)(?:\s*+/\s*+3)?(?:$|\s*+[(\[:;,.!]"
    r"|\s*+[-–—]|\s++(?:minor|moderate|medium|major|low|high|severe|critical|peripheral"
    r"|secondary|primary|stylistic)\b)",
    re.IGNORECASE,
)
_ERROR_LABEL = re.compile(r"\b(?P<label>type|details?|severity)\s*+[:=]\s*+", re.IGNORECASE)
# A statement that there is nothing to list, standing on its own line ("No differences.", "There
# are no visual differences between the captions."): part of a longer sentence it says nothing
# about what was left out ("...; no other differences").
_NO_DIFFERENCES = re.compile(
    r"^[-*#>\s]*(?:(?:there\s+(?:are|were|is)|i\s+(?:found|see)|found"
    r"|(?:the\s+)?(?:two\s+)?captions?\s+(?:have|has|show|contain))\s+)?"
    r"(?:no|zero|0)[\s_]+(?:[a-z-]+[\s_]+){0,3}?differences?\b"
    r"(?:\s+(?:(?:were|was|are|is)\s+)?(?:found|detected|identified))?"
    r"(?:\s+between\s+(?:the\s+)?(?:two\s+)?captions?)?[\s.!*_]*$",
    re.IGNORECASE,
)
_WRAPPERS = ("**", "__", "*", "_", "`")
_TRIM = " \t*_`\"'()[]<>"


def _canonical_key(raw: str) -> str:
    key = re.sub(r"['’]S\b", "", raw.strip().upper())  # "Caption A's claim"
    return re.sub(r"[\s/_-]+", "_", key).strip("_")


def _strip_emphasis(value: str) -> str:
    """`**x**` -> `x`: markdown around a value is formatting, not content.

    Moves two indices and slices once: slicing at every layer would copy the value once per
    layer, quadratic in a value of thousands of nested marks.
    """
    start, end = 0, len(value)
    changed = True
    while changed:
        changed = False
        for mark in _WRAPPERS:
            width = len(mark)
            if (end - start > 2 * width and value.startswith(mark, start)
                    and value.endswith(mark, start, end)):
                start, end = start + width, end - width
                while start < end and value[start].isspace():
                    start += 1
                while end > start and value[end - 1].isspace():
                    end -= 1
                changed = True
    return value[start:end]


def _is_quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] == '"'


def _clean(value: str) -> str:
    """A free-text value as content: quoted is literal, else markdown emphasis is dropped."""
    value = value.strip()
    return value[1:-1] if _is_quoted(value) else _strip_emphasis(value)


def _is_none(value: str) -> bool:
    """An NA-like value (before or after markdown emphasis is dropped)."""
    value = value.strip()
    if not value:
        return True
    if _is_quoted(value):
        return False  # quoting is how `render_paper_text` says "this is literally the text"
    bare = _strip_emphasis(value).strip(_TRIM)
    return not bare or bool(_NONE_WORD.match(bare))


def _token(value: str) -> str:
    """A one-token value (judgment, overall, severity) without markdown, quotes or brackets."""
    return value.strip().strip(_TRIM)


# --- scanning lines into blocks ----------------------------------------------------------------


@dataclass
class _Block:
    """The raw key values of one `[DIFFERENCE n]` block, before interpretation."""

    label: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)


@dataclass
class _Line:
    kind: str  # "blank" | "difference" | "overall" | "key" | "text"
    key: str | None = None  # canonical key; None for an unknown key
    raw_key: str = ""
    value: str = ""


def _header_line(line: str) -> _Line | None:
    bracket = _BRACKET_HEADER.match(line)
    if bracket:
        name = bracket["name"]
        difference = _DIFFERENCE_NAME.match(name)
        if difference:
            return _Line("difference", value=bracket["rest"], raw_key=difference["num"] or "")
        if _ALIASES.get(_canonical_key(name)) == OVERALL:
            return _Line("overall", value=bracket["rest"])
        if _UNKNOWN_KEY.match(_canonical_key(name)) and name == name.upper():
            return _Line("key", key=None, raw_key=name)  # e.g. [REASONING]: an unknown section
        return None  # "[in the background] a tree" is text
    bare = _BARE_HEADER.match(line)
    if bare:
        return _Line("difference", value=bare["rest"] or "", raw_key=bare["num"])
    return None


def difference_header(line: str) -> str | None:
    """The rest of the line after a `[DIFFERENCE n]` / `DIFFERENCE n:` header (in any of the
    dressings the module docstring lists), or None where the line is no such header. Shared
    with the `hall_vs_miss` parser, whose blocks have the same headers."""
    header = _header_line(line.strip())
    return header.value if header is not None and header.kind == "difference" else None


def _key_line(line: str, in_error: bool) -> _Line | None:
    match = _KEY_LINE.match(line)
    if not match:
        dashed = _DASH_KEY_LINE.match(line)
        if dashed and _ALIASES.get(_canonical_key(dashed["key"])) in _DIFFERENCE_KEYS:
            match = dashed
    if not match:
        return None
    raw_key, value = match["key"].strip(), match["value"].strip()
    key = _ALIASES.get(_canonical_key(raw_key))
    if key in _ERROR_SUBKEYS and not in_error:
        return None  # "Type: sedan" inside a claim is claim text, not an error field
    if key is not None:
        return _Line("key", key=key, raw_key=raw_key, value=value)
    if match["emph"] or _UNKNOWN_KEY.match(raw_key.replace(" ", "_")):
        return _Line("key", key=None, raw_key=raw_key, value=value)
    return None


def _classify(line: str, in_error: bool) -> _Line:
    if not line:
        return _Line("blank")
    parsed = _header_line(line) or _key_line(line, in_error)
    if parsed is not None:
        return parsed
    if _KEYISH.match(line):
        raise JudgeOutputError(f"cannot read the key of line {line[:80]!r}")
    return _Line("text", value=line)


class _Scanner:
    """Feeds lines one at a time; keeps which value is open for continuation lines."""

    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.overall: list[str] = []
        self.block: _Block | None = None
        self.open: list[str] | None = None  # the value that the next text line may extend
        self.open_multiline = False
        self.error_key: str | None = None  # the error whose TYPE/DETAIL/SEVERITY lines follow
        self.overall_pending = False  # an [OVERALL_WINNER] header still waits for its value

    def feed(self, line: str) -> None:
        parsed = _classify(line.strip(), self.error_key is not None)
        if parsed.kind == "blank":
            self.open = None  # a blank line ends a wrapped value; trailing prose is not content
        elif parsed.kind == "difference":
            self._start_block(parsed)
        elif parsed.kind == "overall":
            self._overall(parsed.value)
        elif parsed.kind == "key":
            self._key(parsed)
        else:
            self._text(parsed.value)

    def finish(self) -> None:
        self._settle_overall()

    def _settle_overall(self) -> None:
        if self.overall_pending:
            raise JudgeOutputError("[OVERALL_WINNER] has no value (truncated?)")

    def _start_block(self, header: _Line) -> None:
        self._settle_overall()
        number = header.raw_key or f"#{len(self.blocks) + 1} (unnumbered)"
        self.block = _Block(label=f"difference {number}")
        self.blocks.append(self.block)
        self.open, self.error_key = None, None
        if header.value.strip():
            # "[DIFFERENCE 1] ASPECT: dogs" or "[DIFFERENCE 1] no differences": read the rest
            parsed = _classify(header.value.strip(), in_error=False)
            if parsed.kind == "key":
                self._key(parsed)
            else:
                self._text(header.value.strip())

    def _overall(self, value: str) -> None:
        self.block, self.open, self.error_key = None, None, None
        if value.strip():
            self.overall.append(value.strip())
            self.overall_pending = False
        else:
            self.overall_pending = True

    def _key(self, line: _Line) -> None:
        if line.key == OVERALL:
            self._overall(line.value)
            return
        self._settle_overall()
        if line.key is None:
            self.open = None  # unknown keys are ignored, but they end the value before them
        elif line.key in _ERROR_SUBKEYS:
            self._error_part(line.key, line.value)
        else:
            self._difference_key(line.key, line)

    def _difference_key(self, key: str, line: _Line) -> None:
        if self.block is None:
            # not dropped silently: a block without its header is a malformed answer
            raise JudgeOutputError(f"{line.raw_key}: appears outside any [DIFFERENCE n] block")
        if key in self.block.fields:
            raise JudgeOutputError(f"{self.block.label}: {key} is given twice")
        self.error_key = key if key in (ERROR_A, ERROR_B) else None
        self._open_value(self.block.fields, key, line.value)

    def _error_part(self, key: str, value: str) -> None:
        # sub-keys are only classified as keys while `error_key` is set, which needs a block
        assert self.block is not None
        assert self.error_key is not None
        parts = self.block.errors.setdefault(self.error_key, {})
        if key in parts:
            raise JudgeOutputError(f"{self.block.label}: {self.error_key} {key} is given twice")
        self._open_value(parts, key, value)

    def _open_value(self, target: dict[str, list[str]], key: str, value: str) -> None:
        lines = [value] if value else []
        target[key] = lines
        multiline = key in _MULTILINE
        # a one-line key keeps listening only while empty: its value may be on the next line
        self.open = lines if multiline or not lines else None
        self.open_multiline = multiline

    def _text(self, line: str) -> None:
        if self.overall_pending:
            self.overall.append(line)
            self.overall_pending = False
            return
        if self.open is not None:
            self.open.append(line)
            if not self.open_multiline:
                self.open = None
            return
        if self.block is not None:
            self.block.text.append(line)  # reasoning prose; read only for "no differences"


def _scan(text: str) -> _Scanner:
    scanner = _Scanner()
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        scanner.feed(line)
    scanner.finish()
    return scanner


# --- interpreting values -----------------------------------------------------------------------


def _joined(lines: list[str] | None) -> str:
    return " ".join(part.strip() for part in lines or [] if part.strip())


def _claim(lines: list[str] | None) -> str | None:
    value = re.sub(r"^[-*•]\s+", "", _joined(lines))  # a bullet before the value is layout
    if _is_quoted(value):
        return value[1:-1] or None  # literal: `"None"` is the claim "None"
    if _is_none(value) or _SILENT_PHRASE.match(_strip_emphasis(value).strip(_TRIM)):
        return None
    return _clean(value) or None


def _judgment(value: str, where: str) -> str:
    match = _JUDGMENT_VALUE.match(_token(value))
    if not match:
        raise JudgeOutputError(
            f"{where}: unknown JUDGMENT {value!r} (expected A, B, both_wrong, both_supported or "
            "uncertain)"
        )
    word = re.sub(r"[\s_-]+", "_", match["v"].lower())
    mapped = {"a": "actor", "b": "reference", "both_wrong": "both_wrong",
              "both_supported": "both_supported"}  # fmt: skip
    return mapped.get(word, "uncertain")


def _overall_value(value: str) -> str:
    match = _OVERALL_VALUE.match(_token(value))
    if not match:
        raise JudgeOutputError(f"unknown OVERALL_WINNER {value!r} (expected A, B or Tie)")
    return {"a": "actor", "b": "reference"}.get(match["v"].lower(), "tie")


def _severity(value: str) -> tuple[int | None, str | None]:
    """(severity, raw): 1-3 as read; NA-like -> (None, None); anything else (`4`, `high`,
    `2.5`) -> (None, the value as written), so the keyword rule decides and the raw value is
    kept, as the released code does (its `parse_model_severity_level`)."""
    if _is_none(value):
        return None, None
    match = _SEVERITY_VALUE.match(_token(value))
    if not match:
        return None, value.strip()[:MAX_TYPE_CHARS]
    return int(match["n"]), None


def _looks_like_severity(value: str) -> bool:
    return _is_none(value) or bool(_SEVERITY_VALUE.match(_token(value)))


def _labelled_error(value: str, where: str) -> dict[str, str]:
    """`type: x; detail: y; severity: 2` (labels in any order)."""
    matches = list(_ERROR_LABEL.finditer(value))
    parts: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(value)
        label = {"details": DETAIL}.get(match["label"].lower(), match["label"].upper())
        if label in parts:
            raise JudgeOutputError(f"{where}: {label.lower()} is given twice")
        parts[label] = value[match.end() : end].strip().strip(";,|").strip()
    return parts


def _piped_error(value: str) -> dict[str, str]:
    """`type | detail | severity`: first part type, last part severity, the detail in between.

    The detail may itself contain `|`. With two parts the second is the severity when it looks
    like one, else the detail. With three or more the last part is the severity: "t | d |
    high" has the severity "high" (not 1-3: kept raw, the rule decides), not a detail "d |
    high".
    """
    type_, _, rest = value.partition("|")
    detail, bar, last = rest.rpartition("|")
    if not bar and not _looks_like_severity(rest):
        return {TYPE: type_.strip(), DETAIL: rest.strip()}
    return {TYPE: type_.strip(), DETAIL: detail.strip(), SEVERITY: last.strip()}


_SEPARATOR_CHARS = re.compile(r"[-–—,;]")


def _separators(value: str) -> list[tuple[int, int]]:
    r"""The spans `re.finditer(r"\s+[-–—]\s+|\s*[,;]\s+", value)` gives (a dash with
    whitespace on both sides, a comma or semicolon with whitespace after), found in one pass:
    that regex rescans a run of whitespace from each of its positions, quadratic in a value of
    many spaces. Each whitespace run is looked at from the separator after it and the one
    before it only."""
    spans: list[tuple[int, int]] = []
    position = 0  # where the next span may start: spans do not overlap
    for found in _SEPARATOR_CHARS.finditer(value):
        at = found.start()
        if at < position:
            continue
        start = at
        while start > position and value[start - 1].isspace():
            start -= 1
        end = at + 1
        while end < len(value) and value[end].isspace():
            end += 1
        dash = value[at] in "-–—"
        if end == at + 1 or (dash and start == at):
            continue
        spans.append((start, end))
        position = end
    return spans


def _separated_error(value: str) -> dict[str, str] | None:
    """`count_mismatch - two vs one - 3` or `count_mismatch, two vs one, 3`: a label, then the
    detail, then (where the last part reads as one) the severity. The label is one word, or up to
    three (`count mismatch, two vs one, 3`) where a severity ends the value: without one, a
    spaced first part is as likely a sentence as a label."""
    cuts = _separators(value)
    if not cuts:
        return None
    type_ = value[: cuts[0][0]]
    last = value[cuts[-1][1]:]
    severity_last = _looks_like_severity(last) and bool(last.strip())
    if len(type_.split()) > (3 if severity_last else 1):
        return None
    if severity_last:
        detail = value[cuts[0][1]: cuts[-1][0]] if len(cuts) > 1 else ""
        return {TYPE: type_.strip(), DETAIL: detail.strip(), SEVERITY: last.strip()}
    return {TYPE: type_.strip(), DETAIL: value[cuts[0][1]:].strip()}


def _says_no_error(value: str) -> bool:
    """`NONE`, `NA`, `N/A`, `-`, `no error(s)`: the judge says this side has no error."""
    return _is_none(value) or bool(_NO_ERROR_PHRASE.match(_token(value)))


def _inline_error(value: str, where: str) -> dict[str, str]:
    value = _strip_emphasis(value.strip())
    if not value:
        return {}
    if _says_no_error(value):
        return {TYPE: value}
    first = _ERROR_LABEL.match(value)
    if first:
        return _labelled_error(value, where)
    if "|" in value:
        return _piped_error(value)
    separated = _separated_error(value)
    if separated is not None:
        return separated
    if re.search(r"\bseverity\b", value, re.IGNORECASE):
        # "count_mismatch, severity 3": an encoding we do not read; do not store it as a type
        raise JudgeOutputError(
            f"{where}: cannot read error {value!r} (use type | detail | severity)"
        )
    return {TYPE: value}


def _error(block: _Block, key: str) -> dict[str, Any] | None:
    where = f"{block.label}: {key}"
    parts = _inline_error(_joined(block.fields.get(key)), where)
    for sub, lines in block.errors.get(key, {}).items():
        value = _joined(lines)
        same = parts.get(sub) == value or (
            sub == TYPE and _says_no_error(parts.get(sub, "")) and _says_no_error(value))
        if sub in parts and not same:
            raise JudgeOutputError(f"{where}: {sub} given inline and on its own line")
        parts[sub] = value
    type_ = parts.get(TYPE, "").strip()
    if type_ and _says_no_error(type_):
        # `ERROR_TYPE: NONE` is how the released prompts say a side has no error, whatever the
        # detail ("No error.") and severity ("NA") lines after it say
        return None
    type_ = _clean(type_)
    detail = "" if _is_none(parts.get(DETAIL, "")) else _clean(parts.get(DETAIL, ""))
    severity, raw = _severity(parts.get(SEVERITY, ""))
    if not type_:
        if detail or severity is not None or raw is not None:
            raise JudgeOutputError(f"{where}: has a detail or severity but no type")
        return None
    return {"type": type_, "detail": detail, "severity": severity, "severity_raw": raw}


def _difference(block: _Block) -> dict[str, Any]:
    judgment = _joined(block.fields.get(JUDGMENT))
    if not judgment:
        raise JudgeOutputError(f"{block.label}: JUDGMENT is missing")
    actor_claim = _claim(block.fields.get(CLAIM_A))
    reference_claim = _claim(block.fields.get(CLAIM_B))
    if actor_claim is None and reference_claim is None:
        raise JudgeOutputError(
            f"{block.label}: neither CAPTION_A_CLAIM nor CAPTION_B_CLAIM states a claim"
        )
    aspect = _clean(_joined(block.fields.get(ASPECT)))
    if not aspect:
        raise JudgeOutputError(f"{block.label}: ASPECT is missing")
    return {
        "aspect": aspect,
        "actor_claim": actor_claim,
        "reference_claim": reference_claim,
        "judgment": _judgment(judgment, block.label),
        "actor_error": _error(block, ERROR_A),
        "reference_error": _error(block, ERROR_B),
        # the plain-text format has no spans or confidences: absent, said so explicitly
        "actor_span": None,
        "reference_span": None,
        "confidence": None,
    }


def _is_no_difference_block(block: _Block) -> bool:
    """`[DIFFERENCE 1]` followed only by "No differences found.": an explicit empty answer."""
    return (not block.fields and bool(block.text)
            and all(_NO_DIFFERENCES.match(line) for line in block.text))


def _overall(values: list[str]) -> str | None:
    decided = {_overall_value(value) for value in values}
    if len(decided) > 1:
        raise JudgeOutputError(f"conflicting OVERALL_WINNER values: {values}")
    return decided.pop() if decided else None


def _validate(data: dict[str, Any], labels: list[str]) -> JudgeOutput:
    try:
        return JudgeOutput.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error["loc"], labels) + f": {error['msg']}"
                             for error in exc.errors()[:5])  # fmt: skip
        raise JudgeOutputError(f"answer does not fit the judge schema: {problems}") from exc


def _describe(loc: tuple[int | str, ...], labels: list[str]) -> str:
    """`('differences', 0, 'aspect')` -> `difference 1: aspect`, naming the block as written."""
    in_difference = len(loc) >= 2 and loc[0] == "differences" and isinstance(loc[1], int)
    if in_difference and isinstance(loc[1], int) and loc[1] < len(labels):
        return f"{labels[loc[1]]}: " + ".".join(str(part) for part in loc[2:])
    return ".".join(str(part) for part in loc) or "<root>"


def parse_paper_text(text: str | None, *, require_overall: bool = True) -> JudgeOutput:
    """Parse one answer in the paper's plain-text format (see the module docstring).

    Without an overall verdict the answer is incomplete and fails (`require_overall`), as the
    released code's validator fails it ("Missing [OVERALL_WINNER] section"): every released
    prompt and claimdiff's own demand one, and a cut answer usually lacks it.

    >>> answer = '''[DIFFERENCE 1]
    ... ASPECT: dogs
    ... CAPTION_A_CLAIM: two dogs
    ... CAPTION_B_CLAIM: NA
    ... JUDGMENT: B
    ... CAPTION_A_ERROR: count_mismatch | one dog only | 3 (major)
    ... CAPTION_B_ERROR: NA
    ... [OVERALL_WINNER] B'''
    >>> output = parse_paper_text(answer)
    >>> output.differences[0].judgment, output.differences[0].actor_error.severity, output.overall
    (<Judgment.REFERENCE: 'reference'>, 3, <Overall.REFERENCE: 'reference'>)
    """
    if text is None or not text.strip():
        raise JudgeOutputError("empty answer")
    text = judge_answer(text)
    if not text.strip():
        raise JudgeOutputError("empty answer (nothing after the reasoning)")
    scan = _scan(text)
    blocks = [block for block in scan.blocks if not _is_no_difference_block(block)]
    if not scan.blocks and not any(_NO_DIFFERENCES.match(line.strip())
                                   for line in text.splitlines()):
        raise JudgeOutputError(
            "answer has no [DIFFERENCE n] blocks and does not say there are no differences"
        )
    differences = [_difference(block) for block in blocks]
    overall = _overall(scan.overall)
    if overall is None and require_overall:
        raise JudgeOutputError("incomplete answer: no [OVERALL_WINNER] (cut short?)")
    data = {"differences": differences, "overall": overall}
    return _validate(data, [block.label for block in blocks])


# --- rendering ---------------------------------------------------------------------------------


def _one_line(value: str) -> str:
    return " ".join(part.strip() for part in value.splitlines() if part.strip())


def _render_text(value: str | None) -> str:
    """A free-text value; quoted when parsing it bare would not give it back (e.g. "None")."""
    if value is None:
        return "NA"
    value = _one_line(value)
    if _is_none(value) or _SILENT_PHRASE.match(value.strip(_TRIM)) or _clean(value) != value:
        return f'"{value}"'
    return value


def _render_error(error: ErrorLabel | None) -> str:
    if error is None:
        return "NA"
    severity = str(error.severity) if error.severity is not None else (
        _one_line(error.severity_raw) if error.severity_raw else "NA")
    return f"{_one_line(error.type)} | {_one_line(error.detail)} | {severity}"


def _render_difference(number: int, difference: JudgedDifference) -> str:
    return "\n".join([
        f"[DIFFERENCE {number}]",
        f"ASPECT: {_render_text(difference.aspect)}",
        f"CAPTION_A_CLAIM: {_render_text(difference.actor_claim)}",
        f"CAPTION_B_CLAIM: {_render_text(difference.reference_claim)}",
        f"JUDGMENT: {_JUDGMENT_TO_PAPER[difference.judgment]}",
        f"CAPTION_A_ERROR: {_render_error(difference.actor_error)}",
        f"CAPTION_B_ERROR: {_render_error(difference.reference_error)}",
    ])  # fmt: skip


def render_paper_text(output: JudgeOutput) -> str:
    """The canonical paper text of `output`.

    `parse_paper_text(render_paper_text(o)) == o` for outputs whose strings are single-line and
    stripped, and whose spans and confidence are null: the format has no place for those.
    """
    parts = [_render_difference(n, d) for n, d in enumerate(output.differences, start=1)]
    if not parts:
        parts.append("No differences.")
    if output.overall is not None:
        parts.append(f"[OVERALL_WINNER]\n{_OVERALL_TO_PAPER[output.overall]}")
    return "\n\n".join(parts) + "\n"
