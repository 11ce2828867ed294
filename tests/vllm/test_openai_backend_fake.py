"""OpenAIBackend and VllmServer against scripted loopback servers: no vLLM needed.

These run in the main environment too. A scripted server decides each answer (status, body,
headers, delay), so retries, backoff, Retry-After, timeouts, the concurrency bound, request
bodies and key redaction are checked exactly; `sleep` is injected, so backoff costs no time.
The real-server counterparts are in test_openai_backend_vllm.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from claimdiff.errors import ConfigError
from claimdiff.judges.base import Decoding, JudgeBackend, JudgeRequest
from claimdiff.judges.openai_backend import OpenAIBackend, VllmServer
from tests.vllm.loopback import Captured, LoopbackServer, Reply, completion

KEY_ENV = "CLAIMDIFF_TEST_OPENAI_KEY"
KEY = "sk-claimdiff-fake-0123456789abcdef"
FAKE_SERVER = str(Path(__file__).with_name("fake_vllm_server.py"))
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


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


def backend(url: str | None, sleeps: Sleeps | None = None, **options: object) -> OpenAIBackend:
    """A backend with test defaults: the test key, two retries, backoff recorded not slept."""
    schema = options.pop("json_schema", SCHEMA)
    settings: dict[str, object] = {
        "api_key_env": KEY_ENV, "max_retries": 2, "backoff_s": 0.5, "timeout_s": 10.0}
    settings.update(options)
    return OpenAIBackend(url, "tiny-judge", schema,  # type: ignore[arg-type]
                         sleep=sleeps or Sleeps(), **settings)  # type: ignore[arg-type]


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
    assert answers[0].extra["attempts"] == "1"
    assert answers[0].extra["prompt_tokens"] == "11"
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


def test_call_schema_overrides_and_unconstrained_stays_free(serve) -> None:
    server = serve(scripted(completion("{}")))
    other = {"type": "object"}
    with backend(server.url) as judge:
        judge.judge([request()], Decoding(json_schema=other))
    with backend(server.url, json_schema=None) as free:
        free.judge([request()], Decoding(json_schema=other))
    assert server.requests[0].json()["structured_outputs"] == {"json": other}
    assert "structured_outputs" not in server.requests[1].json()


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
    assert "without content" in refused.error
    assert "I cannot help" in refused.error
    assert malformed.error.startswith("malformed response")
    assert "not json" in malformed.error


def test_5xx_is_retried_with_exponential_backoff_and_jitter(serve) -> None:
    server = serve(scripted(Reply(503, b"busy"), Reply(502, b"bad gateway"), completion("{}")))
    sleeps = Sleeps()
    with backend(server.url, sleeps, max_retries=3, backoff_s=0.4) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert answer.text == "{}"
    assert answer.extra["attempts"] == "3"
    assert len(server.requests) == 3
    first, second = sleeps.calls
    # equal jitter: between half and all of 0.4 * 2**(attempt - 1)
    assert 0.2 <= first <= 0.4
    assert 0.4 <= second <= 0.8
    assert judge.stats()["retries"] == 2


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


def test_client_errors_are_not_retried(serve) -> None:
    server = serve(scripted(Reply(400, b'{"error":"maximum context length is 512 tokens"}')))
    sleeps = Sleeps()
    with backend(server.url, sleeps) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert answer.text is None
    assert answer.error.startswith("HTTP 400: ")
    assert "maximum context length" in answer.error
    assert answer.extra["attempts"] == "1"
    assert sleeps.calls == []


def test_persistent_5xx_gives_up_per_request(serve) -> None:
    server = serve(scripted(Reply(500, b"x" * 5000)))
    with backend(server.url, max_retries=2) as judge:
        answers = judge.judge([request("a"), request("b")], Decoding())
    for answer in answers:
        assert answer.error.startswith("gave up after 3 attempts: HTTP 500: ")
        assert len(answer.error) < 400  # the body is cut to a snippet
    assert len(server.requests) == 6


def test_connection_refused_is_retried_then_an_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nothing listens on `port` any more
    sleeps = Sleeps()
    with backend(f"http://127.0.0.1:{port}/v1", sleeps, max_retries=2) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert answer.error.startswith("gave up after 3 attempts: connection error: ")
    assert "Refused" in answer.error
    assert len(sleeps.calls) == 2
    assert judge.stats()["connection_errors"] == 3


def test_timeout_is_retried_then_an_error(serve) -> None:
    server = serve(lambda _: Reply(200, b"{}", delay_s=1.0))  # slower than the timeout
    started = time.monotonic()
    with backend(server.url, timeout_s=0.2, max_retries=1) as judge:
        (answer,) = judge.judge([request()], Decoding())
    assert answer.error == "gave up after 2 attempts: timed out after 0.2 s"
    assert judge.stats()["timeouts"] == 2
    assert time.monotonic() - started < 5


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
        texts = [repr(judge), str(judge.stats()), *(repr(a) for a in answers)]
    assert all(a.error is not None for a in answers)
    assert "[redacted]" in answers[0].error
    for text in texts:
        assert KEY not in text
    assert KEY not in repr(vars(answers[0]))


def test_missing_key(monkeypatch, serve) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=KEY_ENV):
        backend("http://127.0.0.1:9/v1", server_type="openai")
    server = serve(scripted(completion("{}")))
    with backend(server.url) as judge:  # a local vLLM server may need no key
        judge.judge([request()], Decoding())
    assert "Authorization" not in server.requests[0].headers


def test_invalid_options() -> None:
    with pytest.raises(ConfigError):
        backend("http://127.0.0.1:9/v1", server_type="sglang")
    with pytest.raises(ConfigError):
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


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


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
        assert group_alive(server.pid)
        with OpenAIBackend(url, "tiny-model", api_key_env=KEY_ENV) as judge:
            assert judge.judge([request()], Decoding())[0].text == "{}"
    finally:
        server.stop()
    assert not group_alive(server.pid)
    with pytest.raises(ProcessLookupError):
        os.kill(info["child_pid"], 0)  # the "engine" child went with it
    server.stop()  # idempotent


def test_server_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    server = fake_server(tmp_path, "--ignore-sigterm")
    server.start()
    started = time.monotonic()
    server.stop(timeout_s=1.0)
    assert not group_alive(server.pid)
    assert time.monotonic() - started < 10


def test_server_failing_at_startup_reports_its_log_without_the_key(tmp_path: Path) -> None:
    server = fake_server(tmp_path, "--fail", api_key=KEY)
    with pytest.raises(RuntimeError, match="exited with status 3") as excinfo:
        server.start()
    assert "failing on purpose" in str(excinfo.value)
    assert KEY not in str(excinfo.value)
    assert "[redacted]" in str(excinfo.value)
    assert not group_alive(server.pid)


def test_server_only_on_loopback() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        VllmServer("m", host="0.0.0.0")


def test_backend_starts_and_stops_its_server(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    judge = OpenAIBackend(
        None, "served-name", api_key_env=KEY_ENV,
        start_server={"model": "/models/x", "command": [sys.executable, FAKE_SERVER],
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
        from claimdiff.judges.openai_backend import VllmServer
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
