"""The judging loop: retries, cut answers, token counts, typed request errors (no pipeline), and
(through the pipeline, with an injected backend) what two-pass verification and the
position-swap check write when a judge disagrees with itself.

The judges here are scripted: the thing under test is what the handler and the pipeline make of
their answers, not the answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from claimdiff.errors import ContextOverflowError, JudgeUnavailableError, RefusalError
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.judges.events import Event
from claimdiff.judges.loop import judge_batch
from tests.conftest import diff, gold
from tests.pipeline_support import read, run
from tests.support.judging import Replay, item, setup_of

REF = "There are two dogs."
CAPTION = "There are three dogs."
ANSWER = json.dumps(gold(diff("number of dogs", CAPTION, REF, "reference",
                              actor_error=("count_mismatch", 3))))


@pytest.mark.parametrize("output_format", ["json", "paper_text"])
def test_an_answer_cut_at_the_budget_fails_even_when_it_parses(output_format: str):
    """A cut plain-text answer can read as complete with its last blocks missing; a cut answer
    is never taken, and not retried at the same budget either."""
    text = ANSWER if output_format == "json" else (
        "[DIFFERENCE 1]\nASPECT: number of dogs\nCAPTION_A_CLAIM: three dogs\n"
        "CAPTION_B_CLAIM: two dogs\nJUDGMENT: B\n")
    setup = setup_of(output_format=output_format, max_attempts=3,
                     constrained=output_format == "json")
    backend = Replay(RawAnswer(text=text, finish_reason="length", max_tokens=64))
    [result] = judge_batch([item(setup)], backend, setup)
    assert not result.ok
    assert (result.error_class, result.attempts, backend.calls) == ("JudgeOutputError", 1, 1)
    assert result.error == "answer cut at the token budget (64 new tokens); " \
        "judge.max_new_tokens is 1024"
    assert result.raw_output == text


def test_what_backends_report_is_summed_per_event():
    seen: dict[str, int] = {}

    def observe(event: str, value: int) -> None:
        seen[str(event)] = seen.get(str(event), 0) + value

    setup = setup_of()
    backend = Replay(RawAnswer(text=ANSWER),  # a server that sent no usage: nothing counted
                     RawAnswer(text=ANSWER, prompt_tokens=12, cached_prompt_tokens=4,
                               new_tokens=5, transport_attempts=3, length_retries=1))
    results = judge_batch([item(setup), item(setup, index=1)], backend, setup, observe)
    assert all(r.ok for r in results)
    assert {e: seen[e] for e in (Event.PROMPT_TOKENS, Event.CACHED_PROMPT_TOKENS,
                                 Event.NEW_TOKENS, Event.TRANSPORT_ATTEMPTS,
                                 Event.LENGTH_RETRIES, Event.ANSWERS)} == {
        "prompt_tokens": 12, "cached_prompt_tokens": 4, "new_tokens": 5,
        "transport_attempts": 3, "length_retries": 1, "answers": 2}


@pytest.mark.parametrize(("error", "attempts"), [
    (ContextOverflowError("prompt of 9000 tokens does not fit"), 1),
    (JudgeUnavailableError("gave up after 5 attempts: HTTP 503"), 1),
    (RefusalError("the server answered without content"), 3),
])
def test_request_errors_are_retried_or_final_by_their_kind(error, attempts: int):
    setup = setup_of(max_attempts=3)
    backend = Replay(*[RawAnswer(text=None, error=error)] * 3)
    [result] = judge_batch([item(setup)], backend, setup)
    assert not result.ok
    assert (result.error_class, result.attempts, backend.calls) == (
        type(error).__name__, attempts, attempts)


def test_a_refusal_then_an_answer_is_an_answer():
    setup = setup_of(max_attempts=2)
    backend = Replay(RawAnswer(text=None, error=RefusalError("no content")),
                     RawAnswer(text=ANSWER))
    [result] = judge_batch([item(setup)], backend, setup)
    assert result.ok
    assert result.attempts == 2


def _captions(prompt: str) -> tuple[str, str]:
    def block(tag: str) -> str:
        found = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", prompt, re.DOTALL)
        assert found is not None
        return found.group(1)

    return block("actor_caption"), block("reference_caption")


class SelfDoubting:
    """A judge that says the reference is right, while its verifier finds the actor's claim
    supported; and that favours whichever caption sits in the reference's place."""

    model_id = "self-doubting"

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        return [RawAnswer(text=self._answer(r.prompt)) for r in requests]

    @staticmethod
    def _answer(prompt: str) -> str:
        if "<claims>" in prompt:
            ids = re.findall(r"^(\d+[AR]): ", prompt, re.MULTILINE)
            return json.dumps({"verdicts": [
                {"claim_id": i, "verdict": "supported" if i.endswith("A") else "contradicted"}
                for i in ids]})
        actor, reference = _captions(prompt)
        if actor != CAPTION:  # the swapped call: the actor's place holds the reference
            return json.dumps(gold(diff("number of dogs", actor, reference, "reference",
                                        actor_error=("count_mismatch", 3))))
        return json.dumps(gold(
            diff("number of dogs", actor, reference, "reference",
                 actor_error=("count_mismatch", 3)),
            diff("repeated sentence", actor, None, "reference",
                 actor_error=("repetition_redundancy", 1))))


@pytest.fixture
def self_doubting(write_image, write_manifest) -> Path:
    write_image("a.png")
    return write_manifest([{"image": "a.png", "reference": REF, "caption": CAPTION}])


@pytest.mark.parametrize("granularity", ["sample", "difference"])
@pytest.mark.parametrize(("rule", "final"), [("agree_or_uncertain", "uncertain"),
                                              ("verifier_wins", "actor")])
def test_two_pass_disagreement_reaches_the_outputs(self_doubting: Path, tmp_path: Path,
                                                   granularity: str, rule: str, final: str):
    out = tmp_path / "out"
    result = run(self_doubting, out, {"judge.mode": "two_pass", "judge.verify_rule": rule,
                                      "judge.verify_granularity": granularity},
                 backend_factory=lambda setup: SelfDoubting())
    assert result.accounting.balanced
    stats = result.judge_stats
    # the repetition is not the image's to decide: not verified, its judgment stands
    assert (stats["verify_differences"], stats["verify_exempt"]) == (1, 1)
    assert (stats["verify_disagreements"], stats["verify_disagreement_rate"]) == (1, 1.0)
    count, repetition = read(out, "differences")
    assert (count["first_judgment"], count["judgment"]) == ("reference", final)
    assert (repetition["first_judgment"], repetition["judgment"]) == ("reference", "reference")
    assert repetition["outcomes"] == ["actor_hallucination"]
    [reward] = read(out, "rewards")
    assert reward["stats"]["verify_disagreements"] == 1


def test_position_bias_shows_in_the_swap_check(self_doubting: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = run(self_doubting, out, {"judge.swap_fraction": 1.0},
                 backend_factory=lambda setup: SelfDoubting())
    stats = result.judge_stats
    assert (stats["swap_rows"], stats["swap_failures"]) == (1, 0)
    # the count difference is found in both positions, decided for the reference's place each
    # time: once two dogs, once three
    assert stats["swap_difference_consistency"] == pytest.approx(2 * 1 / (2 + 1))
    assert stats["swap_judgment_consistency"] == 0.0
    [reward] = read(out, "rewards")
    assert reward["swap"] == {"original_differences": 2, "swapped_differences": 1, "matched": 1,
                              "judgment_agreements": 0}
    # diagnostic only: the rewards are those of the first answer
    assert reward["stats"]["n_actor_hallucination"] == 2


def test_a_swap_check_with_nothing_to_compare_is_null(tmp_path: Path, write_image,
                                                      write_manifest):
    """Every swapped call failing must not read as a perfectly consistent judge."""
    class SwapFails(SelfDoubting):
        @staticmethod
        def _answer(prompt: str) -> str:
            actor, _ = _captions(prompt)
            return ANSWER if actor == CAPTION else "not json"

    write_image("a.png")
    manifest = write_manifest([{"image": "a.png", "reference": REF, "caption": CAPTION}])
    result = run(manifest, tmp_path / "out", {"judge.swap_fraction": 1.0},
                 backend_factory=lambda setup: SwapFails())
    stats = result.judge_stats
    assert (stats["swap_rows"], stats["swap_failures"]) == (0, 1)
    assert stats["swap_difference_consistency"] is None
    assert stats["swap_judgment_consistency"] is None
    assert result.accounting.rows_judged == 1  # the swap check never fails a row
