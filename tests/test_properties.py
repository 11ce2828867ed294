"""Property tests over the readers of untrusted text: the manifest reader and both judge-answer
parsers. Arbitrary input never crashes them (a bad row or answer is a row error or a
`JudgeOutputError`, nothing else), never takes super-linear time on adversarial shapes, and a
non-answer never becomes an answer."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimdiff.errors import JudgeOutputError, ManifestError, ManifestRowError
from claimdiff.io.manifest import iter_manifest
from claimdiff.judges.formats.json_answer import parse_judge_output
from claimdiff.judges.formats.paper_text import parse_paper_text
from claimdiff.judges.passes.verification import Claim, parse_verification
from tests.support.linear import assert_linear

FAST = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

LINE_PIECES = [b'{"image": "a.png", "reference": "r", "caption": "c"}', b"{", b"}", b"\n",
               b"\r\n", b'"', b",", b"\t", b"\xff", b"\xef\xbb\xbf", b"[" * 50, b"\\ud800",
               b"image,reference,caption", b'"a\nb"', b"x" * 100, b" "]


@given(st.lists(st.sampled_from(LINE_PIECES), max_size=60).map(b"".join),
       st.sampled_from(["m.jsonl", "m.csv", "m.tsv"]))
@FAST
def test_the_manifest_reader_never_crashes_and_numbers_every_row(
        tmp_path_factory: pytest.TempPathFactory, data: bytes, name: str):
    path = tmp_path_factory.mktemp("m") / name
    path.write_bytes(data)
    if name == "m.jsonl":
        rows = list(iter_manifest(str(path)))
    else:
        try:
            rows = list(iter_manifest(str(path)))
        except ManifestError:  # a CSV header that repeats or cannot be read: refused up front
            return
    assert [index for index, _ in rows] == list(range(len(rows)))
    assert all(isinstance(r, dict | ManifestRowError) for _, r in rows)


@given(st.binary(max_size=2000), st.sampled_from(["m.jsonl", "m.csv"]))
@FAST
def test_arbitrary_bytes_as_a_manifest(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                       name: str):
    path = tmp_path_factory.mktemp("b") / name
    path.write_bytes(data)
    try:
        rows = list(iter_manifest(str(path)))
    except ManifestError:
        assert name == "m.csv"
        return
    assert [index for index, _ in rows] == list(range(len(rows)))


MANIFEST_SHAPES = {
    "csv-unclosed-quote-per-line": lambda n: b"image,reference,caption\n" + b'"a,b,c\n' * n,
    "csv-one-quote-then-plain-lines": lambda n: b'image,reference,caption\n"\n' + b"a,b,c\n" * n,
    "csv-alternating-quotes": lambda n: b"image,reference,caption\n" + b'a,"b\n"c,d\n' * n,
    "jsonl-bad-lines": lambda n: b"{not json\n" * n,
    "jsonl-deep-lines": lambda n: (b"[" * 60 + b"\n") * n,
}


@pytest.mark.parametrize("shape", list(MANIFEST_SHAPES))
def test_the_manifest_reader_is_linear(tmp_path: Path, shape: str):
    suffix = ".csv" if shape.startswith("csv") else ".jsonl"

    def read(data: bytes) -> int:
        path = tmp_path / f"m{suffix}"
        path.write_bytes(data)
        return sum(1 for _ in iter_manifest(str(path)))

    assert_linear(read, MANIFEST_SHAPES[shape], n=1000)


# --- judge answers -----------------------------------------------------------------------------

JSON_PIECES = ['{"differences": [', "]", '"overall": "tie"', "}", "{", ",", '"aspect": "x"',
               '"judgment": "actor"', "null", "NaN", '"actor_claim": "a"', "```json", "```",
               "prose ", '"differences": []', '"differences": null', "\\u0000", "\n", '"']


@given(st.lists(st.sampled_from(JSON_PIECES), max_size=40).map("".join))
@FAST
def test_the_json_parser_only_raises_judge_output_errors(text: str):
    try:
        output = parse_judge_output(text)
    except JudgeOutputError:
        return
    # whatever parsed is an answer: it said what the decoding schema requires
    assert '"differences"' in text
    assert '"overall"' in text
    assert output.differences is not None


@given(st.dictionaries(st.sampled_from(["overall", "error", "result", "status", "Differences",
                                        "differences_", "message"]),
                       st.one_of(st.none(), st.text(max_size=5), st.integers(),
                                 st.lists(st.integers(), max_size=2)), max_size=4))
@FAST
def test_an_object_without_differences_is_never_an_answer(data: dict):
    with pytest.raises(JudgeOutputError):
        parse_judge_output(json.dumps(data))


@given(st.text(max_size=400))
@FAST
def test_arbitrary_text_is_an_answer_or_a_judge_output_error(text: str):
    for parse in (parse_judge_output, parse_paper_text):
        with contextlib.suppress(JudgeOutputError):
            parse(text)


PAPER_PIECES = ["[DIFFERENCE 1]\n", "ASPECT: dogs\n", "CAPTION_A_CLAIM: two dogs\n",
                "CAPTION_B_CLAIM: one dog\n", "JUDGMENT: B\n", "CAPTION_A_ERROR: count | x | 3\n",
                "CAPTION_B_ERROR: NA\n", "[OVERALL_WINNER]\nB\n", "**", " ", "\n", ":", "-",
                "No differences.\n", "<think>", "</think>", "<answer>", "</answer>",
                "SEVERITY_LEVEL: 9\n", "ERROR_TYPE: NONE\n"]


@given(st.lists(st.sampled_from(PAPER_PIECES), max_size=40).map("".join))
@FAST
def test_the_paper_parser_only_raises_judge_output_errors(text: str):
    with contextlib.suppress(JudgeOutputError):
        parse_paper_text(text)


@given(st.text(max_size=300))
@FAST
def test_the_verification_parser_only_raises_judge_output_errors(text: str):
    with contextlib.suppress(JudgeOutputError):
        parse_verification(text, [Claim("1A", "a dog")])


ANSWER_SHAPES = {
    "json-unclosed-fences": lambda n: "```" * (n // 3),
    "json-open-braces": lambda n: "{" * n,
    "json-spaces-in-string": lambda n: '{"differences": [{"aspect": "' + " " * n + '"}]}',
    "paper-spaces-line": lambda n: "[DIFFERENCE 1]\nASPECT:" + " " * n + "\n",
    "paper-many-keys": lambda n: "[DIFFERENCE 1]\n" + "ASPECT: x\n" * (n // 10),
    "paper-colons": lambda n: "CAPTION_A_CLAIM" + ":" * n,
    "paper-emphasis": lambda n: "*" * n + "ASPECT" + "*" * n,
    "paper-blocks": lambda n: "[DIFFERENCE 1]\n" * (n // 15),
}


@pytest.mark.parametrize("shape", list(ANSWER_SHAPES))
def test_answer_parsing_is_linear(shape: str):
    parse = parse_paper_text if shape.startswith("paper") else parse_judge_output

    def attempt(text: str) -> None:
        with contextlib.suppress(JudgeOutputError):
            parse(text)

    assert_linear(attempt, ANSWER_SHAPES[shape], n=10_000)


def test_the_linearity_check_catches_a_quadratic():
    """The check is not vacuous: a quadratic scan of the same sizes fails it."""
    with pytest.raises(AssertionError, match="super-linear"):
        assert_linear(lambda s: sum(s.count("a", i) for i in range(len(s))),
                      lambda n: "ab" * (n // 2), n=4000)
