"""A small scriptable HTTP server on 127.0.0.1 for the OpenAI-compatible backend's tests.

One class serves both roles the tests need: a fake OpenAI-compatible endpoint (the `respond`
callback scripts each answer: status, body, headers, delay) and a counting proxy in front of a
real `vllm serve` (`forward_to`). Either way it records every request and the peak number of
requests in flight, which is how the tests measure the backend's concurrency limit.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Captured:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


# Passed as `usage` to leave the field out of the answer altogether.
NO_USAGE: Any = object()
STANDARD_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def completion(
    content: str | None, finish_reason: str = "stop", *, usage: Any = STANDARD_USAGE,
    **message: Any,
) -> Reply:
    """A chat-completions answer in the OpenAI format; `usage` is sent as given (any JSON)."""
    payload: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content, **message}}],
    }
    if usage is not NO_USAGE:
        payload["usage"] = usage
    return Reply(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def forward_to(upstream: str, delay_s: float = 0.0) -> Callable[[Captured], Reply]:
    """A `respond` callback that proxies to `upstream` (a base URL ending in /v1)."""
    base = upstream.removesuffix("/v1")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def respond(request: Captured) -> Reply:
        # Hold the request before forwarding so that concurrent ones overlap measurably.
        time.sleep(delay_s)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "authorization")}
        upstream_request = urllib.request.Request(
            base + request.path, data=request.body, headers=headers, method="POST")
        try:
            with opener.open(upstream_request, timeout=120) as response:
                return Reply(response.status, response.read(),
                             {"Content-Type": "application/json"})
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, exc.read(), {"Content-Type": "application/json"})

    return respond


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 whose POST answers come from `respond`."""

    def __init__(self, respond: Callable[[Captured], Reply]) -> None:
        self._respond = respond
        self._lock = threading.Lock()
        self.requests: list[Captured] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.completed = 0
        self.abandoned = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the loop's next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _handle(self, request: Captured) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            reply = self._respond(request)
            time.sleep(reply.delay_s)
            return reply
        finally:
            with self._lock:
                self.in_flight -= 1
                self.completed += 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                captured = Captured(self.path, dict(self.headers.items()), self.rfile.read(length))
                reply = owner._handle(captured)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (a timeout test): nobody is left to answer.
                    owner.abandoned += 1

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                # Quiet: the tests assert on what was captured, not on access logs.
                return

        return Handler
