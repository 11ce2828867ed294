"""OpenAIBackend against a real vLLM server of the tiny Qwen2-VL on 127.0.0.1.

One server (started and stopped by a module fixture through `VllmServer`) serves the normal,
too-long, timeout, concurrency and authentication tests; the kill test starts its own through
`OpenAIBackend(server_options=...)`, since it ends it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

from PIL import Image

from claimdiff.config import OpenAIOptions
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.judges.backends.openai import OpenAIBackend
from claimdiff.schemas.judge import JudgeOutput
from claimdiff.serving.server_guard import group_alive
from claimdiff.serving.vllm_server import VllmServer
from tests.vllm.loopback import LoopbackServer, forward_to
from tests.vllm.settings import (
    KEY,
    KEY_ENV,
    SERVER_ENV,
    SERVER_MAX_MODEL_LEN,
    server_args,
    small_schema,
)

pytestmark = pytest.mark.vllm
COMPLETE = Decoding(max_new_tokens=384)


@pytest.fixture
def server(vllm_server: VllmServer) -> VllmServer:
    return vllm_server


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


class CountingBackend(OpenAIBackend):
    """Counts its answers as they arrive (the kill test stops the server after two)."""

    answered = 0

    def _answer(self, payload: bytes, attempts: int) -> RawAnswer:
        answer = super()._answer(payload, attempts)
        if answer.error is None:
            self.answered += 1
        return answer


def client(url: str | None, model: Path, **settings: Any) -> CountingBackend:
    server = settings.pop("start_server", None)
    options = OpenAIOptions(**{"base_url": url, "api_key_env": KEY_ENV, "backoff_s": 0.05,
                               **settings})
    return CountingBackend(str(model), small_schema(), options, server_options=server)


def image(color: tuple[int, int, int], size: tuple[int, int] = (80, 60)) -> Image.Image:
    return Image.new("RGB", size, color)


def test_answers_are_valid_judge_output(server, tiny_qwen_dir) -> None:
    shared = image((200, 30, 30))
    requests = [
        JudgeRequest(key="a", prompt="Actor: a red ball. Reference: a blue ball.", image=shared),
        JudgeRequest(key="b", prompt="Actor: two red balls. Reference: a ball.", image=shared),
        JudgeRequest(key="c", prompt="Actor: a boat. Reference: a boat.",
                     image=image((10, 10, 220), (300, 200))),
        JudgeRequest(key="t", prompt="Actor: a dog. Reference: a cat."),
    ]
    with client(server.base_url, tiny_qwen_dir) as judge:
        answers = judge.judge(requests, COMPLETE)
    for answer in answers:
        assert answer.error is None, answer.error
        assert answer.finish_reason == "stop"
        assert answer.transport_attempts == 1
        assert answer.prompt_tokens
        JudgeOutput.model_validate_json(answer.text)
    assert judge.answered == 4


def test_prompt_too_long_is_a_request_error(server, tiny_qwen_dir) -> None:
    requests = [JudgeRequest(key="long", prompt="~" * (2 * SERVER_MAX_MODEL_LEN)),
                JudgeRequest(key="ok", prompt="Actor: a dog. Reference: a cat.")]
    with client(server.base_url, tiny_qwen_dir) as judge:
        too_long, fine = judge.judge(requests, COMPLETE)
    assert str(too_long.error).startswith("HTTP 400: ")
    assert "maximum context length" in str(too_long.error)
    assert too_long.transport_attempts == 1  # a client error is not retried
    assert fine.error is None


def test_rejected_image_prompt_does_not_break_the_next_one(server, tiny_qwen_dir) -> None:
    """vLLM 0.32's server answers 500 to the next request with an image whose over-long prompt
    it rejected after processing the image (multi-modal cache drift); the retry succeeds."""
    from transformers import AutoProcessor

    picture = image((7, 70, 7), (112, 112))
    processor = AutoProcessor.from_pretrained(tiny_qwen_dir)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ""}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    base = len(processor(text=[text], images=[picture], add_special_tokens=False)["input_ids"][0])
    # Over the limit only once the image's tokens are counted (vLLM checks the text first).
    over = JudgeRequest(key="over", prompt="~" * (SERVER_MAX_MODEL_LEN + 3 - base),
                        image=picture)
    with client(server.base_url, tiny_qwen_dir) as judge:
        (rejected,) = judge.judge([over], COMPLETE)
        (after,) = judge.judge(
            [JudgeRequest(key="after", prompt="Actor: a square.", image=picture)], COMPLETE)
    assert str(rejected.error).startswith("HTTP 400: ")
    assert after.error is None, after.error
    JudgeOutput.model_validate_json(after.text)


def test_tiny_timeout_is_retried_then_an_error(server, tiny_qwen_dir) -> None:
    request = JudgeRequest(key="t", prompt="Actor: a dog. Reference: a cat.",
                           image=image((1, 2, 3)))
    with client(server.base_url, tiny_qwen_dir, timeout_s=0.005, max_retries=1) as judge:
        (answer,) = judge.judge([request], COMPLETE)
    assert str(answer.error) == "gave up after 2 attempts: timed out after 0.005 s"
    with client(server.base_url, tiny_qwen_dir) as judge:  # the server is still fine
        assert judge.judge([request], COMPLETE)[0].error is None


def test_concurrency_limit_is_respected(server, tiny_qwen_dir) -> None:
    requests = [JudgeRequest(key=str(i), prompt=f"Actor: {i} dogs. Reference: a dog.")
                for i in range(9)]
    with LoopbackServer(forward_to(server.base_url, delay_s=0.2)) as proxy, \
            client(proxy.url, tiny_qwen_dir, max_concurrency=3) as judge:
        answers = judge.judge(requests, COMPLETE)
    assert all(answer.error is None for answer in answers)
    assert proxy.completed == 9
    assert proxy.peak_in_flight == 3


def test_api_key_never_appears_in_errors(server, tiny_qwen_dir, monkeypatch) -> None:
    wrong = "sk-claimdiff-wrong-9a8b7c6d5e4f"
    request = JudgeRequest(key="k", prompt="Actor: a dog.", image=image((5, 5, 5)))
    texts = []
    monkeypatch.setenv(KEY_ENV, wrong)
    with client(server.base_url, tiny_qwen_dir) as judge:
        (unauthorized,) = judge.judge([request], COMPLETE)
        texts += [repr(judge), repr(unauthorized)]
    assert str(unauthorized.error).startswith("HTTP 401: ")
    assert unauthorized.transport_attempts == 1
    monkeypatch.setenv(KEY_ENV, KEY)
    with client(server.base_url, tiny_qwen_dir, timeout_s=0.005, max_retries=0) as judge:
        answers = judge.judge(
            [request, JudgeRequest(key="l", prompt="~" * 2000)], COMPLETE)
        texts += [repr(judge), *(repr(a) for a in answers), *(str(a.error) for a in answers)]
    assert all(answer.error for answer in answers)
    for text in texts:
        assert KEY not in text
        assert wrong not in text
    # vLLM logs its non-default arguments: the key went through the environment, not argv.
    assert server.log_path is not None
    assert KEY not in server.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.mark.timeout(420)
def test_server_killed_mid_run(tiny_qwen_dir) -> None:
    """Requests already answered stay answered; the one in flight is retried, and once the
    server is known to be dead the rest fail at once, each with its own error."""
    judge = client(None, tiny_qwen_dir, max_concurrency=1, max_retries=2, start_server={
        "args": server_args(SERVER_MAX_MODEL_LEN), "env": SERVER_ENV, "startup_timeout_s": 300})
    server = judge.server
    assert server is not None
    assert server.pid is not None

    def kill_after_two_answers() -> None:
        deadline = time.monotonic() + 120
        while judge.answered < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(server.pid, signal.SIGKILL)  # a crash, not a shutdown

    killer = threading.Thread(target=kill_after_two_answers)
    requests = [JudgeRequest(key=str(i), prompt=f"Actor: {i} cats. Reference: a cat.",
                             image=image((i, 9, 9))) for i in range(6)]
    try:
        killer.start()
        answers = judge.judge(requests, COMPLETE)
        killer.join()
    finally:
        judge.close()
    assert [a.error is None for a in answers[:2]] == [True, True]
    # the status is known once the guard has ended the rest of the group, which can lag
    assert str(answers[-1].error).startswith("the local vLLM server is not running (exited")
    for answer in answers[2:]:
        assert str(answer.error).startswith(
            ("gave up after", "the local vLLM server is not running"))
    for answer in answers:
        assert (answer.error is None) != (answer.text is None)
    assert not group_alive(server.pid)
    assert server.log_path is not None
    server.log_path.unlink()  # a crashed server's log is kept for debugging
