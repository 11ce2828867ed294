"""`claimdiff serve`: the reward server an RL trainer calls during training.

Two ways in, one `RewardService` behind them (README: Rewards during RL):

- `POST /judge`, the released reward server's protocol (its verl reward manager posts one
  completion per request: `solution` is the reference, `response` the actor caption,
  `image_path` the image, `fmt_ratio` the format share) answered with
  `{"rewards": {"format_reward", "accuracy_reward", "final_reward", "<name>_reward"...}}`;
  `GET /` answers `{"message": "Reward Judge Server"}` as the released server does.
- `POST /score`, a batch of `{image, reference, caption}` items answered with every preset
  and the statistics (what `claimdiff.serving.reward_funcs` sends to a remote server).

Unlike the released server, which answers 0.0 for a request it could not judge, a request
that cannot be scored never gets a number: 422 with the stage and the reason (the row is
unscorable: a retry gets the same), 503 when the judge is busy or failed the whole batch
(retryable), 504 past `serve.request_timeout_s`, 400 for a malformed request, 413 for a body
over `serve.max_body_bytes`, 401 without the token where `serve.token_env` names one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from claimdiff.errors import ConfigError, MissingExtraError

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError(exc.name or "fastapi", "serve") from exc
from pydantic import BaseModel, ConfigDict, Field

from claimdiff.config import ClaimdiffConfig
from claimdiff.redaction import redact
from claimdiff.schemas.rows import Stage
from claimdiff.serving.batcher import Batcher, BatchFailedError, BusyError
from claimdiff.serving.rewards import RewardRequest, RewardService, Score, served_reward

log = logging.getLogger(__name__)

SERVER_MESSAGE = "Reward Judge Server"
MAX_SCORE_ITEMS = 1024


class JudgePayload(BaseModel):
    """The released reward server's request. Only `solution`, `response`, `reward_verifier`
    and `image_path` decide the answer; the other fields are accepted as its clients send
    them and otherwise unused."""

    model_config = ConfigDict(extra="ignore", strict=True)

    solution: str = Field(description="the reference caption")
    response: str = Field(description="the actor caption being scored")
    reward_verifier: str = Field(description="a name in serve.verifier_presets or a preset")
    reward_verifier_parm: str = Field(
        default="{}", description="the verifier's parameters, a JSON object (unused here)")
    image_path: str | list[str] | None = None
    fmt_ratio: float | None = Field(default=None, ge=0.0)
    data_source: str | None = None
    query: str | None = None
    prompt: str | None = None
    answer: str | None = None
    len_ratio: float | None = None
    iter: int | None = None
    data_index: int | None = None


class ScoreItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    image: str | None = Field(default=None, description="path (under serve.image_roots) or URI")
    image_base64: str | None = Field(default=None, description="the encoded image itself")
    reference: str
    caption: str
    sample_id: str | None = None
    gold: str | None = Field(default=None, description="gold judge answer (labels judge only)")


class ScoreBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[ScoreItem] = Field(max_length=MAX_SCORE_ITEMS)
    preset: str | None = None


class ScoreResult(BaseModel):
    ok: bool
    preset: str | None = Field(default=None, description="the preset `reward` is the value of")
    reward: float | None = None
    rewards: dict[str, float | None] = Field(default_factory=dict)
    stats: dict[str, Any] | None = None
    stage: str | None = None
    error_class: str | None = None
    error: str | None = None
    cache_key: str | None = None
    cached: bool = False
    status: Literal["ok", "unscorable", "busy", "failed", "timeout"] = "ok"


@dataclass(frozen=True)
class Refusal:
    """A request the server did not score, and why: the HTTP status and the result status."""

    code: int
    detail: str
    status: Literal["busy", "failed", "timeout"]


class BodyLimit:
    """413 for a body over the limit, counted as it arrives (a chunked body has no length).

    The body is read here, whole, before the app sees it: an error raised from inside the app's
    own body reading would come back as FastAPI's 400 "error parsing the body", not a 413.
    Bodies are bounded by the limit, so buffering them costs at most that much per request.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self._limit):
            await _too_large(send, self._limit)
            return
        pieces: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete
            piece = message.get("body", b"")
            seen += len(piece)
            if seen > self._limit:
                await _too_large(send, self._limit)
                return
            pieces.append(piece)
            if not message.get("more_body", False):
                break
        replayed = False

        async def buffered() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(pieces), "more_body": False}
            return await receive()

        await self._app(scope, buffered, send)


async def _too_large(send: Callable[..., Any], limit: int) -> None:
    body = json.dumps({"detail": f"request body over serve.max_body_bytes={limit}"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def preset_for(verifier: str, config: ClaimdiffConfig) -> str | None:
    names = {p.name for p in config.rewards.presets}
    if verifier in config.serve.verifier_presets:
        return config.serve.verifier_presets[verifier] or config.rewards.primary
    return verifier if verifier in names else None


def _result(score: Score, preset: str | None = None) -> ScoreResult:
    if not score.ok:
        return ScoreResult(ok=False, stage=score.stage.value if score.stage else None,
                           error_class=score.error_class, error=redact(score.error or ""),
                           cache_key=score.cache_key, status="unscorable")
    assert score.stats is not None
    name = preset or score.primary
    return ScoreResult(ok=True, preset=name, reward=score.values.get(name), rewards=score.values,
                       stats=score.stats.model_dump(mode="json"), cache_key=score.cache_key,
                       cached=score.cached)


def _refused(code: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=code, content={"detail": redact(detail), **extra})


def _image_of(path: str | list[str] | None) -> str:
    if isinstance(path, list):
        if len(path) != 1:
            raise ValueError(f"image_path names {len(path)} images; the judge reads one")
        path = path[0]
    if path is None or not path.strip():
        raise ValueError("image_path is missing: the judge compares captions against the image")
    return path


def _token(config: ClaimdiffConfig) -> str | None:
    name = config.serve.token_env
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"serve.token_env names {name}, which is not set")
    return value


def build_app(service: RewardService, config: ClaimdiffConfig) -> Any:
    """The ASGI app: routes, the batcher's life, the body limit, the token check."""
    serve = config.serve
    token = _token(config)
    batcher = Batcher(service, max_batch=serve.max_batch, max_wait_s=serve.max_wait_ms / 1000,
                      max_pending=serve.max_pending)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.get_running_loop().run_in_executor(None, service.start)
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            service.close()

    app = FastAPI(title="claimdiff reward server", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def _malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _refused(400, f"malformed request: {where or 'body'}: "
                             f"{first.get('msg', 'invalid')}")

    @app.middleware("http")
    async def _authorised(request: Request, call_next: Callable[..., Any]) -> Any:
        if token is not None and request.url.path != "/":
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return _refused(401, "missing or wrong bearer token")
        return await call_next(request)

    async def scored(request: RewardRequest) -> Score | Refusal:
        try:
            return await asyncio.wait_for(batcher.submit(request), serve.request_timeout_s)
        except BusyError as exc:
            return Refusal(503, str(exc), "busy")
        except BatchFailedError as exc:
            return Refusal(503, str(exc), "failed")
        except TimeoutError:
            return Refusal(504, f"not scored within serve.request_timeout_s="
                                f"{serve.request_timeout_s}", "timeout")

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"message": SERVER_MESSAGE}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        counters = service.counters
        return {"status": "ok", "judge_model": service.model_id,
                "prompt_version": service.setup.prompt_version, "pending": batcher.pending,
                "batches": batcher.batches,
                "recent_batch_sizes": list(batcher.recent_batch_sizes),
                "counters": {k: getattr(counters, k) for k in vars(counters)}}

    @app.post("/judge", response_model=None)
    async def judge(payload: JudgePayload) -> Any:
        preset = preset_for(payload.reward_verifier, config)
        if preset is None:
            return _refused(404, f"unknown reward_verifier {payload.reward_verifier!r}")
        try:
            parm = json.loads(payload.reward_verifier_parm)
        except ValueError as exc:
            return _refused(400, f"reward_verifier_parm is not JSON: {exc}")
        if not isinstance(parm, dict):
            return _refused(400, "reward_verifier_parm must be a JSON object")
        try:
            image = _image_of(payload.image_path)
        except ValueError as exc:
            return _refused(422, str(exc), stage=Stage.VALIDATE.value)
        outcome = await scored(RewardRequest(image=image, reference=payload.solution,
                                             caption=payload.response))
        if isinstance(outcome, Refusal):
            return _refused(outcome.code, outcome.detail, status=outcome.status)
        if not outcome.ok:
            return _refused(422, outcome.error or "not scored",
                            stage=outcome.stage.value if outcome.stage else None,
                            error_class=outcome.error_class)
        assert outcome.stats is not None
        served = served_reward(outcome.stats, config, preset, payload.fmt_ratio)
        if served is None:
            return _refused(422, f"preset {preset!r} has no value for this caption",
                            stage=Stage.DERIVE.value)
        rewards: dict[str, float] = {"format_reward": served.format,
                                     "accuracy_reward": served.accuracy,
                                     "final_reward": served.final}
        rewards.update({f"{name}_reward": value for name, value in outcome.values.items()
                        if value is not None and f"{name}_reward" not in rewards})
        stats = outcome.stats
        for key in ("n_differences", "n_actor_hallucination", "n_actor_omission",
                    "actor_weighted_errors"):
            rewards[f"{key}_reward"] = float(getattr(stats, key))
        return {"rewards": rewards}

    @app.post("/score", response_model=None)
    async def score(batch: ScoreBatch) -> Any:
        if batch.preset is not None and batch.preset not in {
                p.name for p in config.rewards.presets}:
            return _refused(404, f"unknown preset {batch.preset!r}")
        async def one(item: ScoreItem) -> ScoreResult:
            request = _score_request(item)
            if isinstance(request, ScoreResult):
                return request
            outcome = await scored(request)
            if isinstance(outcome, Refusal):
                return ScoreResult(ok=False, error=redact(outcome.detail), status=outcome.status)
            return _result(outcome, batch.preset)

        results = await asyncio.gather(*(one(item) for item in batch.items))
        return {"judge_model": service.model_id, "results": [r.model_dump() for r in results]}

    return BodyLimit(app, serve.max_body_bytes)


def _score_request(item: ScoreItem) -> RewardRequest | ScoreResult:
    if (item.image is None) == (item.image_base64 is None):
        return ScoreResult(ok=False, stage=Stage.VALIDATE.value, error_class="ManifestRowError",
                           error="give exactly one of image and image_base64",
                           status="unscorable")
    image: str | bytes
    if item.image_base64 is not None:
        try:
            image = base64.b64decode(item.image_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            return ScoreResult(ok=False, stage=Stage.LOAD_IMAGE.value, error_class="ImageError",
                               error=f"image_base64 is not base64: {exc}", status="unscorable")
    else:
        assert item.image is not None
        image = item.image
    return RewardRequest(image=image, reference=item.reference, caption=item.caption,
                         sample_id=item.sample_id, gold=item.gold)
