"""A judge backend for any OpenAI-compatible chat-completions endpoint.

`OpenAIBackend` sends each request of a batch as one `POST {base_url}/chat/completions`, from a
bounded thread pool, with the image as a JPEG data URL and the JSON schema as
`response_format={"type": "json_schema", ...}` (server_type "openai") or vLLM's own
`structured_outputs={"json": ...}` field (server_type "vllm"). `timeout_s` is the deadline of the
whole request (`claimdiff.io.http`). Timeouts, 408/429/5xx answers and connection errors are
retried with exponential backoff and jitter (honouring `Retry-After`, in seconds or as an HTTP
date); a request that still fails gets a `JudgeUnavailableError`, an answer without content a
`RefusalError`, so one bad request never fails its batch. A response is trusted only as far as
its shape: token counts are kept only where the server reported them as integers, so an answer
without `usage` is still an answer.

The API key is read from the environment variable named by `api_key_env`, sent only in the
`Authorization` header, and scrubbed from every error text: it never reaches logs, failure rows or
`run.json`. A key is required only for server_type "openai" on a host that is not loopback; a
local server (vLLM, SGLang) often has none, and then no `Authorization` header is sent. With
`start_server`, a local `vllm serve` of the model runs under supervision
(`claimdiff.serving.vllm_server`); when it dies, requests fail at once with its log tail instead
of spending their retries.

Only the standard library is used for HTTP, so this backend needs no extra package.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import io
import json
import logging
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from typing import Any, Literal

from PIL import Image

from claimdiff.config import OpenAIOptions
from claimdiff.errors import (
    ConfigError,
    DeadlineExceededError,
    JudgeRequestError,
    JudgeUnavailableError,
    NetworkError,
    RefusalError,
    ResponseTooLargeError,
)
from claimdiff.io import http as bounded_http
from claimdiff.io.hosts import is_loopback
from claimdiff.io.images import RESAMPLE
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer, request_schema
from claimdiff.serving.vllm_server import VllmServer, server_from_options

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

    `options.base_url` ends with the API version, e.g. `http://127.0.0.1:8000/v1`. With
    `options.start_server`, or with `server_options` (`VllmServer` options for a server of your
    own making: `model`, `args`, `port`, `host`, `startup_timeout_s`, `python`, `env`,
    `log_path`, `command`), a local vLLM server is started first; `base_url` is then optional
    (its loopback host and port are used where given). `sleep` and `rng` are injectable so tests
    can observe backoff without waiting.
    """

    def __init__(
        self,
        model: str,
        json_schema: dict[str, Any] | None = None,
        options: OpenAIOptions | None = None,
        *,
        server_options: Mapping[str, Any] | None = None,
        system_prompt: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        options = options or OpenAIOptions()
        self._model = model
        self._json_schema = json_schema
        self._options = options
        self._system_prompt = system_prompt
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._dead_lock = threading.Lock()

        start = server_options is not None or options.start_server
        base_url = options.base_url
        if not start and not base_url:
            raise ConfigError("the openai backend needs judge.openai.base_url (or start_server)")
        # Read once; kept only in this attribute and the Authorization header.
        self._api_key = os.environ.get(options.api_key_env) or None
        # A started server always listens on loopback; otherwise the URL's host decides.
        local = start or is_loopback(urllib.parse.urlsplit(base_url or "").hostname or "")
        if self._api_key is None and options.server_type == "openai" and not local:
            raise ConfigError(
                f"environment variable {options.api_key_env} holds no API key (needed for a "
                "non-loopback server_type 'openai' endpoint)")
        self._dead_server_error: str | None = None

        self._server: VllmServer | None = None
        if start:
            settings = {"args": list(options.server_args), **(server_options or {})}
            self._server = server_from_options(settings, model, base_url, self._api_key)
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
        pool = self._executor()
        return list(pool.map(self._call, bodies))

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
        if self._options.server_type == "vllm":
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
        bounded, side = image, self._options.image_max_side
        if max(image.size) > side:
            bounded = image.copy()
            bounded.thumbnail((side, side), RESAMPLE)
        if bounded.mode != "RGB":
            bounded = bounded.convert("RGB")
        buffer = io.BytesIO()
        bounded.save(buffer, format="JPEG", quality=self._options.image_quality)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    # -- sending ----------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._options.max_concurrency,
                                                thread_name_prefix="claimdiff-openai")
            return self._pool

    def _call(self, body: bytes) -> RawAnswer:
        """One request, retried on transient failures; never raises for a request's failure."""
        last_error = ""
        retry_after: float | None = None
        attempts = 0
        for attempt in range(self._options.max_retries + 1):
            # A dead local server answers nothing more: fail now rather than back off in vain.
            # (One that dies during a backoff sleep costs one refused attempt, then this.)
            dead = self._dead_server()
            if dead is not None:
                return self._error(JudgeUnavailableError(dead), attempts)
            if attempt:
                self._sleep(self._delay(attempt, retry_after))
            attempts += 1
            try:
                status, headers, payload = self._post(body)
            except DeadlineExceededError:
                last_error, retry_after = f"timed out after {self._options.timeout_s:g} s", None
                continue
            except ResponseTooLargeError as exc:
                return self._error(JudgeUnavailableError(
                    f"the server's answer is too large: {exc}"), attempts)
            except NetworkError as exc:
                # refused, reset, DNS, TLS: the server may come back
                last_error, retry_after = f"connection error: {exc}", None
                continue
            if status == 200:
                return self._answer(payload, attempts)
            last_error = f"HTTP {status}: {self._snippet(payload)}"
            if not _is_retryable_status(status):
                return self._error(JudgeUnavailableError(last_error), attempts)
            retry_after = _retry_after_seconds(headers)
        return self._error(
            JudgeUnavailableError(f"gave up after {attempts} attempts: {last_error}"), attempts)

    def _dead_server(self) -> str | None:
        """The error for requests to a local server that has died; None while it runs (or when
        there is no local server)."""
        server = self._server
        if server is None or server.running():
            return None
        with self._dead_lock:
            if self._dead_server_error is not None:
                return self._dead_server_error
        # Built once: the log tail of a dead server no longer changes, and every pending request
        # of a large batch would otherwise read the log again.
        tail = server.log_tail(_DEAD_SERVER_LOG_LINES)[-_DEAD_SERVER_LOG_CHARS:]
        how = server.exit_description()
        message = f"the local vLLM server is not running ({how}); log tail:\n{tail}"
        with self._dead_lock:
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
                                deadline_s=self._options.timeout_s, max_bytes=_MAX_RESPONSE_BYTES)
        return response.status, response.headers, response.body

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, capped."""
        ceiling = min(self._options.max_backoff_s, self._options.backoff_s * 2 ** (attempt - 1))
        with self._rng_lock:
            delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._options.max_backoff_s))
        return delay

    def _answer(self, payload: bytes, attempts: int) -> RawAnswer:
        try:
            data = json.loads(payload)
            choice = data["choices"][0]
            message = choice["message"]
            if not isinstance(message, dict):
                raise TypeError(f"message is a {type(message).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return self._error(JudgeUnavailableError(
                f"malformed response ({type(exc).__name__}): {self._snippet(payload)}"), attempts)
        # `usage` is optional (and some servers send it half-filled): a count that is absent or
        # not an integer is left out (None), never guessed.
        usage = _mapping(data.get("usage"))
        counts: dict[str, Any] = {
            "prompt_tokens": _token_count(usage.get("prompt_tokens")),
            "cached_prompt_tokens": _token_count(
                _mapping(usage.get("prompt_tokens_details")).get("cached_tokens")),
            "new_tokens": _token_count(usage.get("completion_tokens")),
            "transport_attempts": attempts,
            "extra": {"server_finish_reason": str(choice.get("finish_reason"))[:40]},
        }
        content = message.get("content")
        if content is None:
            refusal = message.get("refusal")
            return RawAnswer(text=None, error=RefusalError(self._redact(
                f"the server answered without content (refusal: {refusal!r})"[:400])), **counts)
        if not isinstance(content, str):
            return self._error(JudgeUnavailableError(
                f"malformed response (content is a {type(content).__name__}): "
                f"{self._snippet(payload)}"), attempts)
        finish_reason: Literal["stop", "length"] = (
            "length" if choice.get("finish_reason") == "length" else "stop")
        return RawAnswer(text=content, finish_reason=finish_reason, **counts)

    def _error(self, error: JudgeRequestError, attempts: int) -> RawAnswer:
        return RawAnswer(text=None, error=type(error)(self._redact(str(error))),
                         transport_attempts=attempts)

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
