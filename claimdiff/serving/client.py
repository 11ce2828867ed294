"""A client of `claimdiff serve`'s `POST /score`: the same `score(requests) -> [Score]` as an
in-process `RewardService`, for a trainer whose judge runs elsewhere."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from claimdiff.errors import ClaimdiffError, NetworkError
from claimdiff.io import http
from claimdiff.schemas.rows import RewardStats, Stage
from claimdiff.serving.rewards import RewardRequest, Score

MAX_ITEMS = 1024  # serving.app.MAX_SCORE_ITEMS, without importing the server's extra
RETRYABLE = ("busy", "failed", "timeout")  # a result status that another try may change


class RemoteScoreError(ClaimdiffError):
    """The reward server refused a whole batch, or did not answer it."""


def _encoded(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def item_of(request: RewardRequest) -> dict[str, Any]:
    item: dict[str, Any] = {"reference": request.reference, "caption": request.caption}
    if isinstance(request.image, str):
        item["image"] = request.image
    elif isinstance(request.image, bytes):
        item["image_base64"] = base64.b64encode(request.image).decode("ascii")
    else:
        item["image_base64"] = _encoded(request.image)
    if request.sample_id is not None:
        item["sample_id"] = request.sample_id
    if request.gold is not None:
        item["gold"] = request.gold
    return item


def score_of(result: dict[str, Any]) -> Score:
    if not result.get("ok"):
        stage = result.get("stage")
        return Score(stage=Stage(stage) if stage else Stage.JUDGE,
                     error_class=result.get("error_class") or result.get("status"),
                     error=result.get("error"), cache_key=result.get("cache_key"))
    return Score(stats=RewardStats.model_validate(result["stats"]), values=result["rewards"],
                 primary=result.get("preset") or "", cache_key=result.get("cache_key"),
                 cached=bool(result.get("cached")))


class RemoteScorer:
    """Scores through a reward server. Requests the server was too busy for, or whose batch
    the judge failed or did not finish in time, are sent again, up to `retries` times with a
    doubling pause, then raise `RemoteScoreError` (an overloaded judge is an operational
    failure, not a property of the completion); an unscorable request is a `Score` without a
    value."""

    def __init__(self, url: str, *, primary: str | None = None, token: str | None = None,
                 timeout_s: float = 900.0, retries: int = 3, backoff_s: float = 1.0,
                 max_response_bytes: int = 256 * 2**20,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._url = url.rstrip("/") + "/score"
        self._primary = primary
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s
        self._max_bytes = max_response_bytes
        self._sleep = sleep

    def score(self, requests: Sequence[RewardRequest]) -> list[Score]:
        scores: list[Score] = []
        for start in range(0, len(requests), MAX_ITEMS):
            scores.extend(self._chunk(requests[start:start + MAX_ITEMS]))
        return scores

    def _chunk(self, requests: Sequence[RewardRequest]) -> list[Score]:
        items = [item_of(r) for r in requests]
        scores: list[Score | None] = [None] * len(requests)
        waiting = list(range(len(requests)))
        pause, last = self._backoff_s, ""
        for attempt in range(self._retries + 1):
            results, last = self._post([items[i] for i in waiting])
            if results is not None:
                again = []
                for index, result in zip(waiting, results, strict=True):
                    if result.get("status") in RETRYABLE:
                        again.append(index)
                        last = str(result.get("error") or result.get("status"))
                    else:
                        scores[index] = score_of(result)
                waiting = again
            if not waiting:
                break
            if attempt == self._retries:
                raise RemoteScoreError(f"{len(waiting)} of {len(requests)} requests not scored "
                                       f"after {self._retries} retries: {last}")
            self._sleep(pause)
            pause *= 2
        done = [s for s in scores if s is not None]
        assert len(done) == len(requests)
        return done

    def _post(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]] | None, str]:
        """The results, or None and why for an answer worth sending again (503, no answer)."""
        body = json.dumps({"items": items, "preset": self._primary}).encode()
        try:
            response = http.request("POST", self._url, deadline_s=self._timeout_s,
                                    max_bytes=self._max_bytes, body=body,
                                    headers=self._headers)
        except NetworkError as exc:
            return None, f"reward server unreachable: {exc}"
        text = response.body[:500].decode(errors="replace")
        if response.status == 503:
            return None, f"reward server answered 503: {text}"
        if response.status != 200:
            raise RemoteScoreError(f"reward server answered {response.status}: {text}")
        results = json.loads(response.body).get("results")
        if not isinstance(results, list) or len(results) != len(items):
            raise RemoteScoreError(f"reward server sent {len(results or [])} results for "
                                   f"{len(items)} requests")
        return results, ""
