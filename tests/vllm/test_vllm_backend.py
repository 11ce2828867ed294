"""VllmBackend on a tiny random-weight Qwen2-VL, with one in-process CPU engine for the session.

A random model says nothing meaningful, so these tests check the mechanics: constrained output is
valid `JudgeOutput` JSON, float32 answers equal the transformers backend's, prompt lengths are
counted as vLLM counts them, an over-long prompt is a per-request error that leaves the engine
healthy, a cut answer is retried once with a larger budget, and prefix-cache hits are reported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from PIL import Image

from claimdiff.errors import ContextOverflowError, JudgeUnavailableError
from claimdiff.judges.backends.base import Decoding, JudgeBackend, JudgeRequest, RawAnswer
from claimdiff.judges.backends.vllm import VllmBackend
from claimdiff.judges.prompting.templates import load_prompt
from claimdiff.schemas.judge import JudgeOutput, decoding_schema
from tests.vllm.settings import MAX_MODEL_LEN, small_schema

pytestmark = pytest.mark.vllm

# Every answer of this model to these prompts ends with EOS after at most ~215 new tokens.
COMPLETE_TOKENS = 384
# The shortest JSON the schema admits needs more than 5 tokens: 5 always truncates.
TRUNCATE_TOKENS = 5
# One byte-level token per character: nothing in the tiny tokenizer's corpus merges "~".
FILLER = "~"


@pytest.fixture(scope="module")
def requests() -> list[JudgeRequest]:
    # Different sizes and aspect ratios give different image token counts.
    return [
        JudgeRequest(key="a", prompt="Actor: a red ball on grass. Reference: a blue ball.",
                     image=Image.new("RGB", (80, 60), (200, 30, 30))),
        JudgeRequest(key="b", prompt="Actor: two cats. Reference: three cats on a bench.",
                     image=Image.new("RGB", (40, 120), (20, 180, 40))),
        JudgeRequest(key="c", prompt="Actor: a boat. Reference: a boat.",
                     image=Image.new("RGB", (300, 200), (10, 10, 220))),
        JudgeRequest(key="t", prompt="Actor: a dog. Reference: a cat."),
    ]


def prompt_tokens(answer: RawAnswer) -> int:
    assert answer.prompt_tokens is not None
    return answer.prompt_tokens


def test_answers_are_valid_judge_output(vllm_backend: VllmBackend, tiny_qwen_dir: Path,
                                        requests) -> None:
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS)
    answers = vllm_backend.judge(requests, decoding)

    assert isinstance(vllm_backend, JudgeBackend)
    assert vllm_backend.model_id == str(tiny_qwen_dir)
    assert len(answers) == len(requests)
    outputs = []
    for answer in answers:
        assert answer.error is None
        assert answer.finish_reason == "stop", answer.text
        assert answer.new_tokens is not None
        assert answer.new_tokens < COMPLETE_TOKENS
        assert answer.length_retries == 0
        outputs.append(JudgeOutput.model_validate_json(answer.text))
    assert any(output.differences for output in outputs)
    # The pre-submission count (image tokens included) equals vLLM's own for every prompt.
    for index, (request, answer) in enumerate(zip(requests, answers, strict=True)):
        job = vllm_backend._plan(index, request, decoding)
        assert not isinstance(job, RawAnswer)
        assert job.prompt_tokens == prompt_tokens(answer), request.key
    assert prompt_tokens(answers[2]) > prompt_tokens(answers[3])


def test_float32_answers_equal_the_transformers_backend(vllm_backend, tiny_qwen_dir,
                                                        requests) -> None:
    from claimdiff.judges.backends.transformers import TransformersBackend

    reference = TransformersBackend(str(tiny_qwen_dir), small_schema(), dtype="float32")
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS)
    expected = reference.judge(requests, decoding)
    actual = vllm_backend.judge(requests, decoding)
    for want, got, request in zip(expected, actual, requests, strict=True):
        assert got.text == want.text, request.key
        assert got.finish_reason == want.finish_reason == "stop"
        # vLLM counts the EOS token among the generated ones, the transformers backend does not.
        assert got.new_tokens == (want.new_tokens or 0) + 1


def test_greedy_is_deterministic_and_batch_independent(vllm_backend, requests) -> None:
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS)
    batched = [a.text for a in vllm_backend.judge(requests, decoding)]
    assert [a.text for a in vllm_backend.judge(requests, decoding)] == batched
    for request, text in zip(requests, batched, strict=True):
        assert vllm_backend.judge([request], decoding)[0].text == text, request.key


def test_sampling_is_seeded(vllm_backend, requests) -> None:
    decoding = Decoding(max_new_tokens=COMPLETE_TOKENS, temperature=1.0, seed=7)
    first = [a.text for a in vllm_backend.judge(requests, decoding)]
    assert [a.text for a in vllm_backend.judge(requests, decoding)] == first
    for text in first:
        JudgeOutput.model_validate_json(text)


@pytest.mark.timeout(120)  # the engine bug this guards against shows up as a hang
def test_prompt_too_long_is_a_request_error_and_the_engine_stays_healthy(vllm_backend,
                                                                        requests) -> None:
    image = requests[0].image
    too_long = JudgeRequest(key="long", prompt=FILLER * MAX_MODEL_LEN, image=image)
    answers = vllm_backend.judge([too_long, requests[1]], Decoding(max_new_tokens=16))
    # never submitted: kept out of the run's prompt-token (cache hit) counts
    assert answers[0].prompt_tokens is None
    assert isinstance(answers[0].error, ContextOverflowError)
    found = re.fullmatch(rf"prompt of (\d+) tokens does not fit max_model_len={MAX_MODEL_LEN}",
                         str(answers[0].error))
    assert found is not None
    assert int(found.group(1)) > MAX_MODEL_LEN
    assert answers[0].text is None
    assert answers[1].error is None
    # In vLLM 0.32 a prompt rejected after its image was processed breaks the next request with
    # the same image (multi-modal cache drift); the backend never submits such a prompt.
    again = vllm_backend.judge([requests[0]], Decoding(max_new_tokens=16))
    assert again[0].error is None


def test_context_boundary(vllm_backend) -> None:
    """A prompt of max_model_len tokens has no room for an answer; one token less has one."""
    (empty,) = vllm_backend.judge([JudgeRequest(key="e", prompt="")], Decoding(max_new_tokens=1))
    base = prompt_tokens(empty)

    def sized(tokens: int) -> JudgeRequest:
        return JudgeRequest(key=str(tokens), prompt=FILLER * (tokens - base))

    full, fits = vllm_backend.judge([sized(MAX_MODEL_LEN), sized(MAX_MODEL_LEN - 1)],
                                    Decoding(max_new_tokens=COMPLETE_TOKENS))
    assert str(full.error) == f"prompt of {MAX_MODEL_LEN} tokens does not fit max_model_len=" \
        f"{MAX_MODEL_LEN}"
    assert fits.error is None
    assert prompt_tokens(fits) == MAX_MODEL_LEN - 1
    # Capped by the context, not by max_new_tokens; no retry can make room.
    assert (fits.finish_reason, fits.new_tokens) == ("length", 1)
    assert (fits.max_tokens, fits.length_retries) == (1, 0)


def test_cut_answer_is_retried_once_with_a_larger_budget(vllm_backend, requests) -> None:
    request = requests[0]
    (whole,) = vllm_backend.judge([request], Decoding(max_new_tokens=COMPLETE_TOKENS))
    assert whole.new_tokens is not None
    needed = whole.new_tokens

    # One token short: cut, retried with twice the budget, which is enough.
    (rescued,) = vllm_backend.judge([request], Decoding(max_new_tokens=needed - 1))
    assert (rescued.text, rescued.finish_reason) == (whole.text, "stop")
    assert rescued.length_retries == 1
    assert rescued.max_tokens == 2 * (needed - 1)
    # the tokens of the submission that gave the answer
    assert prompt_tokens(rescued) == prompt_tokens(whole)

    # Far too short: cut again after the retry, returned as "length" for the handler.
    (cut,) = vllm_backend.judge([request], Decoding(max_new_tokens=TRUNCATE_TOKENS))
    assert cut.finish_reason == "length"
    assert cut.error is None
    assert (cut.max_tokens, cut.length_retries) == (10, 1)
    assert whole.text.startswith(cut.text)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.text)


def test_retry_factor_one_disables_the_retry(vllm_backend, requests, monkeypatch) -> None:
    monkeypatch.setattr(vllm_backend, "_retry_factor", 1.0)
    (cut,) = vllm_backend.judge([requests[0]], Decoding(max_new_tokens=TRUNCATE_TOKENS))
    assert (cut.finish_reason, cut.length_retries) == ("length", 0)
    assert cut.new_tokens == TRUNCATE_TOKENS


def test_prefix_cache_hits_are_reported(vllm_backend) -> None:
    """Captions of one sample share the image and most of the prompt: the second call hits."""
    image = Image.new("RGB", (112, 112), (90, 90, 20))
    prompt = load_prompt("single_pass").render(reference="A yellow square.", caption="A square.")
    request = JudgeRequest(key="p", prompt=prompt, image=image)
    decoding = Decoding(max_new_tokens=TRUNCATE_TOKENS)
    (first,) = vllm_backend.judge([request], decoding)
    (second,) = vllm_backend.judge([request], decoding)
    assert prompt_tokens(first) > 1500
    assert second.cached_prompt_tokens is not None
    assert prompt_tokens(second) // 2 < second.cached_prompt_tokens <= prompt_tokens(second)


def test_request_schema_replaces_the_backend_schema(vllm_backend, requests) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    (answer,) = vllm_backend.judge([requests[0].model_copy(update={"json_schema": schema})],
                                   Decoding(max_new_tokens=32))
    assert isinstance(json.loads(answer.text)["ok"], bool)


def test_default_schema_compiles_and_uncompilable_ones_are_caught(vllm_backend, requests,
                                                                   monkeypatch) -> None:
    """xgrammar 0.2.8 in vLLM fails on repetition bounds above 128; `decoding_schema` splits its
    bounds (regression), and a schema the engine still rejects is a per-request error when a
    request brings it and a clear error at load time when the backend does."""
    (answer,) = vllm_backend.judge(
        [requests[0].model_copy(update={"json_schema": decoding_schema()})],
        Decoding(max_new_tokens=8))
    assert answer.error is None
    unbounded = {"type": "object", "properties": {"x": {"type": "string",
                                                        "pattern": "^[a-z]{0,200}$"}},
                 "required": ["x"]}
    (answer,) = vllm_backend.judge(
        [requests[0].model_copy(update={"json_schema": unbounded})], Decoding(max_new_tokens=8))
    assert isinstance(answer.error, JudgeUnavailableError)
    assert str(answer.error) == "vLLM ended the request with finish_reason='error'"
    monkeypatch.setattr(vllm_backend, "_json_schema", unbounded)
    with pytest.raises(ValueError, match="could not use the judge's JSON schema"):
        vllm_backend._check_schema_compiles()


def test_empty_batch(vllm_backend) -> None:
    assert vllm_backend.judge([], Decoding()) == []
