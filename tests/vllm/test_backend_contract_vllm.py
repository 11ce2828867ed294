"""The backend contract (`tests/contracts/backend_contract.py`) for the vLLM environment's
backends: the in-process vLLM engine and the OpenAI-compatible client against a real
`vllm serve`, both of the tiny random-weight Qwen2-VL."""

from __future__ import annotations

import pytest

pytest.importorskip("vllm")

from PIL import Image

from claimdiff.config import OpenAIOptions
from claimdiff.errors import ContextOverflowError, JudgeUnavailableError
from claimdiff.judges.backends.base import Decoding, JudgeRequest
from tests.contracts.backend_contract import (  # noqa: F401 - the contract's tests, collected here
    Contract,
    test_a_request_brings_its_own_schema,
    test_an_unanswerable_request_fails_alone,
    test_every_request_gets_one_answer_in_order,
    test_greedy_answers_are_reproducible_and_batch_independent,
)
from tests.vllm.settings import KEY, KEY_ENV, MAX_MODEL_LEN, small_schema

pytestmark = pytest.mark.vllm
SIZES = {"a": (80, 60), "b": (40, 120), "c": (300, 200), "s": (32, 32)}


def answerable(key: str) -> JudgeRequest:
    return JudgeRequest(key=key, prompt=f"Actor: a {key} ball. Reference: a ball.",
                        image=Image.new("RGB", SIZES[key], (200, 30, 30)))


@pytest.fixture(scope="module", params=["vllm", "openai"])
def contract(request: pytest.FixtureRequest, monkeypatch_module) -> Contract:
    if request.param == "vllm":
        backend = request.getfixturevalue("vllm_backend")
        too_long = JudgeRequest(key="long", prompt="~" * MAX_MODEL_LEN)
        return Contract(backend, answerable, too_long, ContextOverflowError,
                        Decoding(max_new_tokens=384), constrained=True)
    from claimdiff.judges.backends.openai import OpenAIBackend

    server = request.getfixturevalue("vllm_server")
    monkeypatch_module.setenv(KEY_ENV, KEY)
    backend = OpenAIBackend(str(request.getfixturevalue("tiny_qwen_dir")), small_schema(),
                            OpenAIOptions(base_url=server.base_url, api_key_env=KEY_ENV))
    too_long = JudgeRequest(key="long", prompt="~" * 2000)  # the server's context is 512
    return Contract(backend, answerable, too_long, JudgeUnavailableError,
                    Decoding(max_new_tokens=384), constrained=True)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch
