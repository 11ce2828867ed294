"""TransformersBackend on a tiny random-weight LLaVA built offline (tests/support/tiny_vlm.py).

A random model says nothing meaningful, so these tests check the mechanics that matter to the
pipeline: constrained output is valid `JudgeOutput` JSON, greedy decoding is reproducible and
independent of batching, truncation is reported as "length", and missing extras fail helpfully.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("xgrammar")

import torch
from PIL import Image

from claimdiff.errors import ContextOverflowError, MissingExtraError
from claimdiff.judges.backends.base import Decoding, JudgeBackend, JudgeRequest
from claimdiff.judges.backends.transformers import TransformersBackend
from claimdiff.schemas.judge import JudgeOutput, decoding_schema
from tests.support.tiny_vlm import IMAGE_TOKEN, IMAGE_TOKENS, build_tiny_llava

# Measured over 8 model seeds x 32 prompts with the schema below: every answer ended with EOS after
# at most 263 new tokens (median 187), so 384 leaves a wide margin on other CPUs.
COMPLETE_TOKENS = 384
# The shortest JSON the schema admits, {"differences":[],"overall":"tie"}, needs 11 tokens in the
# tiny tokenizer (checked by dynamic programming over its vocabulary), so 5 tokens always truncate.
TRUNCATE_TOKENS = 5


def _test_schema() -> dict[str, Any]:
    """The project's decoding schema, with bounds small enough for a random model to finish."""
    return decoding_schema(max_differences=1, max_string_chars=4)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"), seed=0)


@pytest.fixture(scope="module")
def backend(model_dir: pathlib.Path) -> TransformersBackend:
    return TransformersBackend(str(model_dir), _test_schema())


@pytest.fixture(scope="module")
def requests() -> list[JudgeRequest]:
    # Different sizes and aspect ratios exercise resize + crop; different prompt lengths make the
    # batch genuinely left-padded.
    return [
        JudgeRequest(
            key="a",
            prompt="Actor: a red ball on grass. Reference: a blue ball on grass.",
            image=Image.new("RGB", (80, 60), (200, 30, 30)),
        ),
        JudgeRequest(
            key="b",
            prompt="Actor: two cats. Reference: three cats sitting on a bench under a tree.",
            image=Image.new("RGB", (40, 120), (20, 180, 40)),
        ),
        JudgeRequest(
            key="c",
            prompt="Actor: a boat. Reference: a boat.",
            image=Image.new("RGB", (300, 200), (10, 10, 220)),
        ),
    ]


def test_tiny_model_loads_with_auto_classes(model_dir) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (70, 50))], return_tensors="pt")

    image_token_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert int((inputs["input_ids"] == image_token_id).sum()) == IMAGE_TOKENS
    with torch.inference_mode():
        logits = model(**inputs).logits
    assert logits.shape[-1] == model.get_output_embeddings().weight.shape[0]
    # Byte-level BPE: arbitrary JSON, non-ASCII included, round-trips through the tokenizer.
    sample = '{"aspect":"couleur é ✓ 猫","x":[1,null]}'
    ids = processor.tokenizer(sample, add_special_tokens=False)["input_ids"]
    assert processor.tokenizer.decode(ids) == sample


def test_batch_answers_are_valid_judge_output(backend, model_dir, requests) -> None:
    answers = backend.judge(requests, Decoding(max_new_tokens=COMPLETE_TOKENS))

    assert isinstance(backend, JudgeBackend)
    assert backend.model_id == str(model_dir)
    assert len(answers) == len(requests)
    outputs = []
    for answer in answers:
        assert answer.error is None
        assert answer.finish_reason == "stop", answer.text
        assert (answer.new_tokens or 0) < COMPLETE_TOKENS
        # Strict JSON parsing is enough: decoding_schema's patterns exclude the raw control
        # characters that xgrammar's plain JSON string rule would let through (those would need
        # json.loads(text, strict=False)).
        outputs.append(JudgeOutput.model_validate_json(answer.text))
    # Not only the trivial {"differences":[],...}: this model and prompts give one each.
    assert any(output.differences for output in outputs)


def test_greedy_is_deterministic(backend, requests) -> None:
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS)
    first = [a.text for a in backend.judge(requests, decoding)]
    second = [a.text for a in backend.judge(requests, decoding)]
    assert first == second


def test_batched_answer_equals_single_answer(backend, requests) -> None:
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS)
    batched = backend.judge(requests, decoding)
    for request, answer in zip(requests, batched, strict=True):
        assert backend.judge([request], decoding)[0].text == answer.text, request.key


def test_tiny_budget_reports_length_and_invalid_json(backend, requests) -> None:
    answers = backend.judge(requests, Decoding(max_new_tokens=TRUNCATE_TOKENS))
    for answer in answers:
        assert answer.finish_reason == "length"
        assert answer.new_tokens == TRUNCATE_TOKENS
        assert answer.text.startswith("{")
        with pytest.raises(json.JSONDecodeError):
            json.loads(answer.text, strict=False)


def test_prompt_past_the_context_fails_alone(backend, requests) -> None:
    """A runaway prompt is refused on its own (with its size); the rest of its batch is answered
    exactly as without it."""
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS)
    runaway = JudgeRequest(key="long", prompt="dog " * 9000, image=requests[0].image)
    answers = backend.judge([requests[0], runaway, requests[1]], decoding)
    assert answers[1].text is None
    assert answers[1].error is not None
    assert isinstance(answers[1].error, ContextOverflowError)
    assert "does not fit the model's context of 8192 tokens" in str(answers[1].error)
    alone = backend.judge([requests[0], requests[1]], decoding)
    assert [a.text for a in (answers[0], answers[2])] == [a.text for a in alone]


def test_a_prompt_near_the_context_does_not_shrink_its_batch_mates(backend, requests) -> None:
    """A prompt whose answer the context would cut is generated on its own, with the room it has;
    its batch-mates keep their whole budget (the same answers as without it)."""
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS)

    def length(prompt: str) -> int:
        request = JudgeRequest(key="n", prompt=prompt, image=requests[0].image)
        return int(backend._inputs([request])["attention_mask"].sum())

    base, per_word = length(""), length("dog " * 100) - length("")
    words = (8192 - 20 - base) * 100 // per_word  # leaves room for about 20 new tokens
    near = JudgeRequest(key="near", prompt="dog " * words, image=requests[0].image)
    room = 8192 - length(near.prompt)
    assert 0 < room < COMPLETE_TOKENS
    answers = backend.judge([requests[0], near, requests[1]], decoding)
    assert answers[1].max_tokens == room
    alone = backend.judge([requests[0], requests[1]], decoding)
    assert [a.text for a in (answers[0], answers[2])] == [a.text for a in alone]
    assert {a.max_tokens for a in alone} == {COMPLETE_TOKENS}


def test_text_only_request_in_mixed_batch(backend, requests) -> None:
    text_only = JudgeRequest(key="t", prompt="Actor: a dog. Reference: a cat.")
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS)
    answers = backend.judge([requests[0], text_only], decoding)
    assert [a.finish_reason for a in answers] == ["stop", "stop"]
    JudgeOutput.model_validate_json(answers[1].text)
    assert backend.judge([text_only], decoding)[0].text == answers[1].text


def test_sampling_is_seeded_and_leaves_global_rng_alone(backend, requests) -> None:
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS, temperature=1.0, seed=7)
    rng_before = torch.get_rng_state()
    first = [a.text for a in backend.judge(requests, decoding)]
    assert torch.equal(torch.get_rng_state(), rng_before)
    second = [a.text for a in backend.judge(requests, decoding)]
    assert first == second
    for text in first:
        JudgeOutput.model_validate_json(text)


def test_empty_batch(backend) -> None:
    assert backend.judge([], Decoding()) == []


def test_unconstrained_with_system_prompt(model_dir, requests) -> None:
    free = TransformersBackend(str(model_dir), None, system_prompt="You judge captions.")
    answers = free.judge(requests[:2], Decoding(max_new_tokens=8))
    assert len(answers) == 2
    for answer in answers:
        assert isinstance(answer.text, str)
        assert answer.finish_reason in {"stop", "length"}
        assert (answer.new_tokens or 0) <= 8


def test_full_default_schema_compiles(model_dir) -> None:
    # Regression: with xgrammar 0.2.8's compiler cache on, string patterns with a bound above
    # 128 ({0,400} here) abort compilation; the backend must work with the production schema.
    TransformersBackend(str(model_dir), decoding_schema())


def test_missing_xgrammar_raises_import_error_with_hint(model_dir, monkeypatch) -> None:
    # A None entry in sys.modules makes the next import of that name raise ImportError.
    monkeypatch.setitem(sys.modules, "xgrammar", None)
    with pytest.raises(MissingExtraError, match="xgrammar") as excinfo:
        TransformersBackend(str(model_dir), _test_schema())
    assert isinstance(excinfo.value, ImportError)
    assert "pip install 'claimdiff[transformers]'" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, ImportError)
