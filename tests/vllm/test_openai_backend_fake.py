"""OpenAIBackend and VllmServer against scripted loopback servers: no vLLM needed.

These run in the main environment too. A scripted server decides each answer (status, body,
headers, delay), so retries, backoff, Retry-After, timeouts, the concurrency bound, request
bodies, malformed or partial responses and key redaction are checked exactly; `sleep` is
injected, so backoff costs no time. VllmServer runs the stand-in fake_vllm_server.py (guard
behaviour beyond one server is in test_server_guard.py). The real-server counterparts are in
test_openai_backend_vllm.py.
"""

from __future__ import annotations

import base64
import email.utils
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from claimdiff.config import OpenAIOptions
from claimdiff.errors import ConfigError, JudgeUnavailableError, RefusalError
from claimdiff.judges.backends.base import Decoding, JudgeBackend, JudgeRequest
from claimdiff.judges.backends.openai import OpenAIBackend, _retry_after_seconds
from claimdiff.serving import server_guard
from claimdiff.serving.server_guard import pid_alive
from claimdiff.serving.vllm_server import VllmServer
from tests.vllm.loopback import NO_USAGE, Captured, LoopbackServer, Reply, completion

KEY_ENV = "CLAIMDIFF_TEST_OPENAI_KEY"
KEY = "sk-claimdiff-fake-0123456789abcdef"
FAKE_SERVER = str(Path(__file__).with_name("fake_vllm_server.py"))
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
# The counts an answer carries (`RawAnswer` fields the judging loop sums into run.json).
TOKEN_COUNTS = ("prompt_tokens", "cached_prompt_tokens", "new_tokens")


def counts(answer: Any) -> dict[str, int]:
    return {k: getattr(answer, k) for k in TOKEN_COUNTS if getattr(answer, k) is not None}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Captured], Reply]], LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def start(respond: Callable[[Captured], Reply]) -> LoopbackServer:
        servers.append(LoopbackServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


class Sleeps:
    """An injected `sleep` that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def options_of(url: str | None, **settings: Any) -> OpenAIOptions:
    """The backend's option model, with the test key and the given settings."""
    return OpenAIOptions(**{"base_url": url, "api_key_env": KEY_ENV, **settings})


def backend(url: str | None, sleeps: Sleeps | None = None, **settings: Any) -> OpenAIBackend:
    """A backend with test defaults: the test key, two retries, backoff recorded not slept;
    `start_server` holds `VllmServer` options for a server of the test's making."""
    schema = settings.pop("json_schema", SCHEMA)
    server = settings.pop("start_server", None)
    system_prompt = settings.pop("system_prompt", None)
    options = options_of(url, **{"max_retries": 2, "backoff_s": 0.5, "timeout_s": 10.0,
                                 **settings})
    return OpenAIBackend("tiny-judge", schema, options, server_options=server,
                         system_prompt=system_prompt, sleep=sleeps or Sleeps())


def scripted(*replies: Reply) -> Callable[[Captured], Reply]:
    """Answer with `replies` in order, then repeat the last one."""
    queue = list(replies)

    def respond(_: Captured) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


def request(key: str = "r", image: Image.Image | None = None) -> JudgeRequest:
    return JudgeRequest(key=key, prompt=f"Judge {key}.", image=image)


def test_vllm_request_body_and_answer(serve) -> None:
    server = serve(scripted(completion('{"ok":true}')))
    image = Image.new("RGB", (40, 30), (200, 10, 10))
    with backend(server.url) as judge:
        answers = judge.judge([request("a", image)], Decoding(max_new_tokens=77, seed=5))

    assert isinstance(judge, JudgeBackend)
    assert answers[0].text == '{"ok":true}'
    assert answers[0].finish_reason == "stop"
    assert answers[0].error is None
    assert answers[0].transport_attempts == 1
    assert answers[0].prompt_tokens == 11
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    body = sent.json()
    assert body["model"] == "tiny-judge"
    assert body["max_tokens"] == 77
    assert (body["temperature"], body["seed"], body["top_p"]) == (0.0, 5, 1.0)
    # vLLM would otherwise take these from the model's generation_config
    assert (body["top_k"], body["repetition_penalty"]) == (-1, 1.0)
    assert body["structured_outputs"] == {"json": SCHEMA}
    assert "response_format" not in body
    image_part, text_part = body["messages"][0]["content"]
    assert image_part["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert text_part == {"type": "text", "text": "Judge a."}


def test_openai_request_body_uses_response_format(serve) -> None:
    server = serve(scripted(completion("{}")))
    with backend(server.url, server_type="openai", system_prompt="You judge.") as judge:
        judge.judge([request()], Decoding(max_new_tokens=9))
    body = server.requests[0].json()
    assert body["max_completion_tokens"] == 9
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "judge_output", "schema": SCHEMA, "strict": False}}
    assert not {"structured_outputs", "top_k", "repetition_penalty", "max_tokens"} & set(body)
    assert body["messages"][0] == {"role": "system", "content": "You judge."}


def test_request_schema_overrides_and_unconstrained_stays_free(serve) -> None:
    server = serve(scripted(completion("{}")))
    other = {"type": "object"}
    own = request().model_copy(update={"json_schema": other})
    with backend(server.url) as judge:
        judge.judge([own], Decoding())
    with backend(server.url, json_schema=None) as free:
        free.judge([own], Decoding())
    assert server.requests[0].json()["structured_outputs"] == {"json": other}
    assert "structured_outputs" not in server.requests[1].json()


@pytest.mark.parametrize(("usage", "expected"), [
    (NO_USAGE, {}),
    (None, {}),
    ({"prompt_tokens": None, "completion_tokens": None, "prompt_tokens_details": None}, {}),
    ("11 tokens", {}),
    ([11, 7], {}),
    ({"prompt_tokens": "11", "completion_tokens": True, "prompt_tokens_details": [3]}, {}),
    ({"prompt_tokens": 11.0, "completion_tokens": -1, "prompt_tokens_details": {}},
     {"prompt_tokens": 11}),
    ({"prompt_tokens": 11, "completion_tokens": 7,
      "prompt_tokens_details": {"cached_tokens": None}},
     {"prompt_tokens": 11, "new_tokens": 7}),
], ids=["missing", "null", "null-fields", "string", "list", "wrong-types", "partly-valid",
        "null-cached"])
def test_answers_without_usable_token_counts_are_still_answers(
        serve, usage: Any, expected: dict[str, int]) -> None:
    server = serve(scripted(completion('{"ok":true}', usage=usage)))
    with backend(server.url) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert (answer.text, answer.error) == ('{"ok":true}', None)
    # only the counts the server gave as whole numbers: nothing guessed
    assert counts(answer) == expected
    assert answer.transport_attempts == 1


def test_cached_prompt_tokens_are_reported_per_answer(serve) -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 7,
             "prompt_tokens_details": {"cached_tokens": 30}}
    server = serve(scripted(completion("{}", usage=usage)))
    with backend(server.url) as judge:
        answers = judge.judge([request("a"), request("b")], Decoding())
    for answer in answers:
        assert counts(answer) == {"prompt_tokens": 40, "cached_prompt_tokens": 30,
                                  "new_tokens": 7}


def test_message_or_content_of_the_wrong_shape_is_malformed(serve) -> None:
    def raw(choice: object) -> Reply:
        return Reply(200, json.dumps({"choices": [choice]}).encode())

    server = serve(scripted(
        raw({"message": "just text"}),
        raw({"message": {"content": [{"type": "text", "text": "{}"}]}}),
        raw("not a choice"),
        completion("{}")))
    with backend(server.url, max_concurrency=1) as judge:
        answers = judge.judge([request(str(i)) for i in range(4)], Decoding())
    assert [str(a.error).split(":")[0] if a.error else None for a in answers] == [
        "malformed response (TypeError)", "malformed response (content is a list)",
        "malformed response (TypeError)", None]
    assert all(a.text is None for a in answers[:3])
    assert all(isinstance(a.error, JudgeUnavailableError) for a in answers[:3])


def test_length_and_refusal_and_malformed_answers(serve) -> None:
    server = serve(scripted(
        completion('{"ok":', finish_reason="length"),
        completion(None, refusal="I cannot help with that."),
        Reply(200, b"<html>not json</html>")))
    with backend(server.url, max_concurrency=1) as judge:
        cut, refused, malformed = judge.judge(
            [request("a"), request("b"), request("c")], Decoding())
    assert (cut.text, cut.finish_reason, cut.error) == ('{"ok":', "length", None)
    assert refused.text is None
    assert isinstance(refused.error, RefusalError)  # retried by the loop like an empty answer
    assert "without content" in str(refused.error)
    assert "I cannot help" in str(refused.error)
    assert str(malformed.error).startswith("malformed response")
    assert "not json" in str(malformed.error)


def test_5xx_is_retried_with_exponential_backoff_and_jitter(serve) -> None:
    server = serve(scripted(Reply(503, b"busy"), Reply(502, b"bad gateway"), completion("{}")))
    sleeps = Sleeps()
    with backend(server.url, sleeps, max_retries=3, backoff_s=0.4) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert answer.text == "{}"
    assert answer.transport_attempts == 3
    assert len(server.requests) == 3
    first, second = sleeps.calls
    # equal jitter: between half and all of 0.4 * 2**(attempt - 1)
    assert 0.2 <= first <= 0.4
    assert 0.4 <= second <= 0.8


def test_retry_after_is_honoured_and_capped(serve) -> None:
    server = serve(scripted(
        Reply(429, b"slow down", {"Retry-After": "7"}),
        Reply(429, b"slow down", {"Retry-After": "3600"}),
        completion("{}")))
    sleeps = Sleeps()
    with backend(server.url, sleeps, max_retries=2, backoff_s=0.01, max_backoff_s=20) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert answer.error is None
    assert sleeps.calls == [7.0, 20.0]


def retry_after(value: str) -> Message:
    headers = Message()
    headers["Retry-After"] = value
    return headers


def test_retry_after_http_date_is_seconds_from_now() -> None:
    now = 1_800_000_000.0
    clock = lambda: now  # noqa: E731
    assert _retry_after_seconds(
        retry_after(email.utils.formatdate(now + 30, usegmt=True)), now=clock) == 30.0
    assert _retry_after_seconds(
        retry_after(email.utils.formatdate(now - 30, usegmt=True)), now=clock) == 0.0
    assert _retry_after_seconds(retry_after("Wed, 21 Oct 2015 07:28:00"), now=clock) == 0.0
    assert _retry_after_seconds(retry_after("12"), now=clock) == 12.0
    assert _retry_after_seconds(retry_after("soon"), now=clock) is None
    assert _retry_after_seconds(retry_after("-3"), now=clock) is None
    assert _retry_after_seconds(Message()) is None


def test_retry_after_http_date_sets_the_backoff(serve) -> None:
    date = email.utils.formatdate(time.time() + 10, usegmt=True)
    server = serve(scripted(Reply(503, b"busy", {"Retry-After": date}), completion("{}")))
    sleeps = Sleeps()
    with backend(server.url, sleeps, backoff_s=0.01) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert answer.error is None
    (slept,) = sleeps.calls
    assert 8.0 < slept <= 10.0  # the date has whole seconds


def test_client_errors_are_not_retried(serve) -> None:
    server = serve(scripted(Reply(400, b'{"error":"maximum context length is 512 tokens"}')))
    sleeps = Sleeps()
    with backend(server.url, sleeps) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert answer.text is None
    assert str(answer.error).startswith("HTTP 400: ")
    assert "maximum context length" in str(answer.error)
    assert answer.transport_attempts == 1
    assert sleeps.calls == []


def test_persistent_5xx_gives_up_per_request(serve) -> None:
    server = serve(scripted(Reply(500, b"x" * 5000)))
    with backend(server.url, max_retries=2) as judge:
        answers = judge.judge([request("a"), request("b")], Decoding())
    for answer in answers:
        assert str(answer.error).startswith("gave up after 3 attempts: HTTP 500: ")
        assert len(str(answer.error)) < 400  # the body is cut to a snippet
    assert len(server.requests) == 6


def test_connection_refused_is_retried_then_an_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nothing listens on `port` any more
    sleeps = Sleeps()
    with backend(f"http://127.0.0.1:{port}/v1", sleeps, max_retries=2) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert str(answer.error).startswith("gave up after 3 attempts: connection error: ")
    assert "Refused" in str(answer.error)
    assert len(sleeps.calls) == 2
    assert answer.transport_attempts == 3


def test_timeout_is_retried_then_an_error(serve) -> None:
    server = serve(lambda _: Reply(200, b"{}", delay_s=1.0))  # slower than the timeout
    started = time.monotonic()
    with backend(server.url, timeout_s=0.2, max_retries=1) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert str(answer.error) == "gave up after 2 attempts: timed out after 0.2 s"
    assert answer.transport_attempts == 2
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_timeout_is_a_deadline_for_the_whole_request(in_headers: bool) -> None:
    """A server that trickles a byte every 50 ms never trips a per-read timeout: the timeout
    must bound the whole request, headers and body."""
    from tests.support.http_servers import serve as serve_http
    from tests.support.http_servers import trickle

    with (serve_http({"/v1/chat/completions": trickle(0.05, in_headers=in_headers)}) as base,
          backend(f"{base}/v1", timeout_s=0.3, max_retries=1) as judge):
        (answer,) = judge.judge([request()], Decoding())
    assert str(answer.error) == "gave up after 2 attempts: timed out after 0.3 s"


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("inf"), float("nan")])
def test_non_finite_or_non_positive_timeouts_are_refused(timeout: float) -> None:
    with pytest.raises(ValidationError, match="timeout_s"):
        OpenAIOptions(base_url="http://127.0.0.1:1/v1", timeout_s=timeout)


def test_concurrency_is_bounded(serve) -> None:
    def slow(_: Captured) -> Reply:
        reply = completion("{}")
        reply.delay_s = 0.15  # long enough for every allowed request to be in flight at once
        return reply

    server = serve(slow)
    with backend(server.url, max_concurrency=3) as judge:
        answers = judge.judge([request(str(i)) for i in range(10)], Decoding())
    assert all(a.text == "{}" for a in answers)
    assert server.peak_in_flight == 3


def test_images_are_bounded_jpegs_encoded_once_per_batch(serve, monkeypatch) -> None:
    server = serve(scripted(completion("{}")))
    big = Image.new("RGBA", (3000, 1200), (10, 200, 10, 128))
    small = Image.new("L", (20, 10), 128)
    with backend(server.url, image_max_side=512, image_quality=80) as judge:
        encode = judge._data_url
        calls: list[tuple[int, int]] = []
        monkeypatch.setattr(judge, "_data_url", lambda im: calls.append(im.size) or encode(im))
        judge.judge([request("a", big), request("b", big), request("c", small)], Decoding())
    assert sorted(calls) == [(20, 10), (3000, 1200)]
    assert big.size == (3000, 1200)  # the caller's image is left alone
    sizes = []
    for sent in server.requests:
        url = sent.json()["messages"][0]["content"][0]["image_url"]["url"]
        decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert (decoded.format, decoded.mode) == ("JPEG", "RGB")
        sizes.append(decoded.size)
    assert sorted(sizes) == [(20, 10), (512, 205), (512, 205)]


def test_api_key_never_appears_in_answers_errors_or_repr(serve) -> None:
    def echo_headers(request: Captured) -> Reply:
        # A careless server that echoes the request's headers in its error body.
        return Reply(400 if "400" in request.json()["messages"][-1]["content"][-1]["text"]
                     else 503, json.dumps(request.headers).encode())

    server = serve(echo_headers)
    with backend(server.url, max_retries=1) as judge:
        answers = judge.judge([request("400"), request("503")], Decoding())
        texts = [repr(judge), *(repr(a) for a in answers), *(str(a.error) for a in answers)]
    assert all(a.error is not None for a in answers)
    assert "[redacted]" in str(answers[0].error)
    for text in texts:
        assert KEY not in text
    assert KEY not in repr(vars(answers[0]))


def test_a_key_is_required_only_for_a_remote_openai_endpoint(monkeypatch, serve) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=KEY_ENV):
        backend("https://judge.example.com/v1", server_type="openai")
    backend("http://[::1]:9/v1", server_type="openai").close()
    backend("http://localhost:9/v1", server_type="openai").close()
    server = serve(scripted(completion("{}")))
    # A local vLLM or SGLang server often runs without a key: then no Authorization is sent.
    for server_type in ("vllm", "openai"):
        with backend(server.url, server_type=server_type) as judge:
            assert judge.judge([request()], Decoding())[0].text == "{}"
    assert len(server.requests) == 2
    assert not any("Authorization" in sent.headers for sent in server.requests)


def test_invalid_options() -> None:
    with pytest.raises(ValidationError):
        backend("http://127.0.0.1:9/v1", server_type="sglang")
    with pytest.raises(ValidationError):
        backend("http://127.0.0.1:9/v1", max_concurrency=0)
    with pytest.raises(ConfigError, match="base_url"):
        backend(None)
    with pytest.raises(ConfigError, match="unknown start_server options"):
        backend(None, start_server={"modle": "x"})


def test_empty_batch() -> None:
    assert backend("http://127.0.0.1:9/v1").judge([], Decoding()) == []


# -- VllmServer, with a stand-in for vLLM's API server ---------------------------------------


def fake_server(tmp_path: Path, *args: str, **options: object) -> VllmServer:
    settings: dict[str, object] = {"command": [sys.executable, FAKE_SERVER],
                                   "startup_timeout_s": 30.0}
    settings.update(options)
    return VllmServer("tiny-model", args=list(args), **settings)  # type: ignore[arg-type]


def group_alive(pgid: int | None) -> bool:
    assert pgid is not None
    return server_guard.group_alive(pgid)


def wait_for(condition: Callable[[], bool], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


def test_server_starts_answers_and_stops_its_whole_group(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    server = fake_server(tmp_path, "--record", str(record), api_key=KEY)
    url = server.start()
    try:
        info = json.loads(record.read_text())
        assert url == server.base_url
        assert url.startswith("http://127.0.0.1:")
        assert info["has_key"] is True
        assert KEY not in " ".join(info["argv"])  # the key travels in the environment
        # `pid` is the server's own, and its process group's (not the guard's)
        assert info["pid"] == info["pgid"] == server.pid
        assert group_alive(server.pid)
        assert server.running()
        with OpenAIBackend("tiny-model", None, options_of(url)) as judge:
            assert judge.judge([request()], Decoding())[0].text == "{}"
    finally:
        server.stop()
    assert not group_alive(server.pid)
    assert not server.running()
    with pytest.raises(ProcessLookupError):
        os.kill(info["child_pid"], 0)  # the "engine" child went with it
    assert server.log_path is not None
    assert not server.log_path.exists()  # a clean stop leaves no temporary log behind
    server.stop()  # idempotent


def test_server_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    server = fake_server(tmp_path, "--ignore-sigterm")
    server.start()
    started = time.monotonic()
    server.stop(timeout_s=1.0)
    assert not group_alive(server.pid)
    assert time.monotonic() - started < 10


def test_server_failing_at_startup_reports_and_keeps_its_log(tmp_path: Path, caplog) -> None:
    server = fake_server(tmp_path, "--fail", api_key=KEY)
    with caplog.at_level(logging.WARNING), pytest.raises(
            RuntimeError, match="exited with status 3 during startup") as excinfo:
        server.start()
    assert "failing on purpose" in str(excinfo.value)
    assert KEY not in str(excinfo.value)
    assert "[redacted]" in str(excinfo.value)
    assert not group_alive(server.pid)
    # a crash's log outlives stop(), and the warning says where it is
    assert server.log_path is not None
    assert server.log_path.exists()
    assert str(server.log_path) in caplog.text
    server.log_path.unlink()


def test_server_command_that_cannot_start(tmp_path: Path) -> None:
    server = VllmServer("m", command=[str(tmp_path / "no-such-vllm")], startup_timeout_s=30)
    with pytest.raises(RuntimeError, match="exited with status 127 during startup") as excinfo:
        server.start()
    assert "cannot start" in str(excinfo.value)
    assert server.pid is None
    assert server.log_path is not None
    server.log_path.unlink()


def test_unhealthy_answers_are_polled_not_spun(tmp_path: Path) -> None:
    """A /health answer that is not 200 but raises nothing (204) must not busy-spin the wait."""
    polls = tmp_path / "health.log"
    server = fake_server(tmp_path, "--health-status", "204", "--health-log", str(polls),
                         startup_timeout_s=3)
    with pytest.raises(TimeoutError, match="not healthy after 3 s"):
        server.start()
    times = [float(line) for line in polls.read_text().splitlines()]
    assert len(times) >= 2
    # one poll per 0.25 s at most (a busy loop polls every millisecond or so)
    assert (times[-1] - times[0]) / (len(times) - 1) >= 0.2
    assert not group_alive(server.pid)


@pytest.mark.parametrize("args", [
    ["--api-key", "sk-secret"], ["--api-key=sk-secret"], ["--api_key", "sk-secret"],
    ["--api-k=sk-secret"]])
def test_api_key_on_the_server_command_line_is_refused(args: list[str]) -> None:
    with pytest.raises(ConfigError, match="VLLM_API_KEY") as excinfo:
        VllmServer("m", args=args)
    assert "sk-secret" not in str(excinfo.value)
    with pytest.raises(ConfigError, match="--api-key"):
        VllmServer("m", command=["vllm", "serve", *args])
    with pytest.raises(ConfigError, match="--api-key"):
        backend(None, start_server={"args": args})
    with pytest.raises(ValidationError, match="--api-key"):
        options_of(None, start_server=True, server_args=args)


def test_other_api_arguments_are_allowed() -> None:
    VllmServer("m", args=["--api-server-count", "2", "--api-", "x"])


def test_requests_to_a_dead_local_server_fail_at_once(tmp_path: Path, caplog) -> None:
    record = tmp_path / "record.json"
    sleeps = Sleeps()
    judge = OpenAIBackend(
        "tiny-model", None, options_of(None, max_retries=4), sleep=sleeps,
        server_options={"command": [sys.executable, FAKE_SERVER], "startup_timeout_s": 30,
                        "args": ["--echo-key", "--record", str(record)]})
    server = judge.server
    assert server is not None
    assert server.pid is not None
    try:
        assert judge.judge([request()], Decoding())[0].text == "{}"
        # The API server alone crashes; its "engine" child is left for the guard to end.
        os.kill(server.pid, signal.SIGKILL)
        wait_for(lambda: not server.running(), 5, "the crash was not noticed")
        with caplog.at_level(logging.WARNING):
            answers = judge.judge([request("a"), request("b")], Decoding())
        for answer in answers:
            assert answer.text is None
            assert isinstance(answer.error, JudgeUnavailableError)
            error = str(answer.error)
            assert error.startswith(
                "the local vLLM server is not running (exited with status 137 (SIGKILL)); "
                "log tail:\n")
            assert "fake vLLM server starting" in error
            assert KEY not in error  # the log held it
            assert "[redacted]" in error
            assert answer.transport_attempts == 0
        assert sleeps.calls == []  # no backoff spent on a server that is gone
        child = json.loads(record.read_text())["child_pid"]
        wait_for(lambda: not pid_alive(child), 10, "the crashed server's child outlived it")
    finally:
        judge.close()
    assert server.log_path is not None
    assert server.log_path.exists()  # kept after the crash
    assert str(server.log_path) in caplog.text
    server.log_path.unlink()


def test_server_only_on_loopback() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        VllmServer("m", host="0.0.0.0")


def test_backend_starts_and_stops_its_server(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    judge = OpenAIBackend(
        "served-name", None, options_of(None),
        server_options={"model": "/models/x", "command": [sys.executable, FAKE_SERVER],
                        "args": ["--record", str(record)], "startup_timeout_s": 30})
    server = judge.server
    assert server is not None
    assert judge.base_url == server.base_url
    assert json.loads(record.read_text())["model_name"] == "served-name"
    assert judge.judge([request()], Decoding())[0].text == "{}"
    judge.close()
    assert not group_alive(server.pid)


def test_server_is_stopped_when_the_interpreter_exits(tmp_path: Path) -> None:
    """A job that never calls stop() (Beam never closes its models) still leaves no server."""
    script = textwrap.dedent(f"""
        import sys
        from claimdiff.serving.vllm_server import VllmServer
        server = VllmServer("m", command=[sys.executable, {FAKE_SERVER!r}], startup_timeout_s=30)
        server.start()
        print(server.pid, flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True, cwd=Path(__file__).parents[2])
    pgid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
        pytest.fail("the server outlived the interpreter that started it")
