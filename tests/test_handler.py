"""The judge model handler: retries, cut answers, token counts, and (through the pipeline) what
two-pass verification and the position-swap check write when a judge disagrees with itself.

The judges here are scripted: the thing under test is what the handler and the pipeline make of
their answers, not the answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from claimdiff.config import JudgeConfig
from claimdiff.io.images import LoadedImage
from claimdiff.judges import handler
from claimdiff.judges.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.judges.handler import JudgeItem, decoding_params, judge_batch
from claimdiff.schemas.rows import InputRow
from tests.conftest import diff, gold
from tests.pipeline_support import read, run

REF = "There are two dogs."
CAPTION = "There are three dogs."
ANSWER = json.dumps(gold(diff("number of dogs", CAPTION, REF, "reference",
                              actor_error=("count_mismatch", 3))))


class Replay:
    """Answers every request with the next scripted (text, finish_reason, extra)."""

    model_id = "replay"

    def __init__(self, *answers: RawAnswer) -> None:
        self._answers = list(answers)
        self.calls = 0

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        self.calls += 1
        return [self._answers.pop(0) for _ in requests]


def _item(config: JudgeConfig) -> JudgeItem:
    row = InputRow(manifest="m", row_index=0, image="a.png", image_uri="/a.png", reference=REF,
                   caption=CAPTION, sample_id="s", actor_id="a")
    image = LoadedImage("/a.png", "0" * 64, 4, 4, Image.new("RGB", (4, 4)))
    return JudgeItem(row=row, image=image, prompt="judge this", prompt_version="p",
                     judge_model="replay", decoding=decoding_params(config), cache_key="k")


@pytest.mark.parametrize("output_format", ["json", "paper_text"])
def test_an_answer_cut_at_the_budget_fails_even_when_it_parses(output_format: str):
    """A cut plain-text answer can read as complete with its last blocks missing; a cut answer
    is never taken, and not retried at the same budget either."""
    text = ANSWER if output_format == "json" else (
        "[DIFFERENCE 1]\nASPECT: number of dogs\nCAPTION_A_CLAIM: three dogs\n"
        "CAPTION_B_CLAIM: two dogs\nJUDGMENT: B\n")
    config = JudgeConfig(output_format=output_format, max_attempts=3)
    backend = Replay(RawAnswer(text=text, finish_reason="length", extra={"max_tokens": "64"}))
    [result] = judge_batch([_item(config)], backend, config)
    assert not result.ok
    assert (result.error_class, result.attempts, backend.calls) == ("JudgeOutputError", 1, 1)
    assert result.error == "answer cut at the token budget (64 new tokens); " \
        "judge.max_new_tokens is 1024"
    assert result.raw_output == text


def test_token_counts_that_are_not_numbers_are_ignored():
    seen: dict[str, int] = {}

    def observe(event: str, value: int) -> None:
        seen[event] = seen.get(event, 0) + value

    config = JudgeConfig()
    backend = Replay(RawAnswer(text=ANSWER, extra={"prompt_tokens": "None", "new_tokens": ""}),
                     RawAnswer(text=ANSWER, extra={"prompt_tokens": "12", "new_tokens": "5"}))
    results = judge_batch([_item(config), _item(config)], backend, config, observe)
    assert all(r.ok for r in results)
    assert (seen["prompt_tokens"], seen["new_tokens"]) == (12, 5)


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
def self_doubting(monkeypatch, write_image, write_manifest) -> Path:
    monkeypatch.setattr(handler, "build_backend", lambda config: SelfDoubting())
    write_image("a.png")
    return write_manifest([{"image": "a.png", "reference": REF, "caption": CAPTION}])


@pytest.mark.parametrize("granularity", ["sample", "difference"])
@pytest.mark.parametrize(("rule", "final"), [("agree_or_uncertain", "uncertain"),
                                              ("verifier_wins", "actor")])
def test_two_pass_disagreement_reaches_the_outputs(self_doubting: Path, tmp_path: Path,
                                                   granularity: str, rule: str, final: str):
    out = tmp_path / "out"
    result = run(self_doubting, out, {"judge.mode": "two_pass", "judge.verify_rule": rule,
                                      "judge.verify_granularity": granularity})
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
    result = run(self_doubting, out, {"judge.swap_fraction": 1.0})
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


def test_a_swap_check_with_nothing_to_compare_is_null(monkeypatch, tmp_path: Path,
                                                      write_image, write_manifest):
    """Every swapped call failing must not read as a perfectly consistent judge."""
    class SwapFails(SelfDoubting):
        @staticmethod
        def _answer(prompt: str) -> str:
            actor, _ = _captions(prompt)
            return ANSWER if actor == CAPTION else "not json"

    monkeypatch.setattr(handler, "build_backend", lambda config: SwapFails())
    write_image("a.png")
    manifest = write_manifest([{"image": "a.png", "reference": REF, "caption": CAPTION}])
    result = run(manifest, tmp_path / "out", {"judge.swap_fraction": 1.0})
    stats = result.judge_stats
    assert (stats["swap_rows"], stats["swap_failures"]) == (0, 1)
    assert stats["swap_difference_consistency"] is None
    assert stats["swap_judgment_consistency"] is None
    assert result.accounting.rows_judged == 1  # the swap check never fails a row
