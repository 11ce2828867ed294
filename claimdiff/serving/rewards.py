"""Rewards on demand: (image, reference, caption) requests -> the run's statistics and presets.

The same judge, loop and derivation as a batch run (`judges.loop.judge_batch`,
`rewards.judged.derive_result`), for an RL trainer asking during training: the reward server
(`serving.app`), TRL's `reward_funcs` and verl's `compute_score` (`serving.reward_funcs`) all
score through one `RewardService`.

A request that cannot be scored (an unreadable image, an answer that is not a judge output
after every attempt, a derivation that fails) gets a `Score` with `ok=False`, its stage and its
reason, never a number: the caller decides what an unscored completion means, and each adapter
says what it does with one.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from claimdiff.config import ClaimdiffConfig
from claimdiff.errors import ClaimdiffError, JudgeOutputError, ManifestRowError, RowError
from claimdiff.io.images import LoadedImage, from_bytes, from_pixels, load_image
from claimdiff.io.manifest import validate_row
from claimdiff.io.uris import scheme_of
from claimdiff.judges.backends.base import JudgeBackend
from claimdiff.judges.backends.factory import build_backend
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.loop import judge_batch
from claimdiff.judges.records import JudgeItem, JudgeResult
from claimdiff.rewards.judged import Derived, derive_result
from claimdiff.rewards.presets import format_score, reward_value
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.rows import InputRow, RewardStats, Stage
from claimdiff.transforms.judge import prepare

SERVE_MANIFEST = "serve"
RUN_ID = "serve"

ImageInput = str | bytes | Image.Image


@dataclass(frozen=True)
class RewardRequest:
    """One completion to score. `image` is a path or URI, encoded bytes, or a decoded image;
    `gold` (a judge answer as JSON text) is read by the labels judge only."""

    image: ImageInput
    reference: str
    caption: str
    sample_id: str | None = None
    gold: str | None = None


@dataclass(frozen=True)
class Score:
    """What one request got: statistics and every configured preset, or a stage and a reason."""

    stats: RewardStats | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    primary: str = ""
    stage: Stage | None = None
    error_class: str | None = None
    error: str | None = None
    cache_key: str | None = None
    raw_answer: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.stats is not None

    @property
    def reward(self) -> float | None:
        """The primary preset's value; None for a request that was not scored."""
        return self.values.get(self.primary) if self.ok else None


def failed(stage: Stage, exc: BaseException | str, error_class: str | None = None) -> Score:
    if isinstance(exc, BaseException):
        return Score(stage=stage, error_class=error_class or type(exc).__name__, error=str(exc))
    return Score(stage=stage, error_class=error_class or "RewardError", error=exc)


@dataclass
class ServiceCounters:
    requests: int = 0
    scored: int = 0
    failed: int = 0
    cache_hits: int = 0
    judged: int = 0  # rows sent to the judge (a batch's repeats count once)
    batches: int = 0


class ImageRoots:
    """Where a local image path may point: under one of these folders, links resolved (a
    request naming `/etc/...` or `../../` out of a root is refused). `None`: anywhere (the
    in-process reward functions, whose caller is the trainer itself)."""

    def __init__(self, roots: Sequence[str] | None) -> None:
        self._roots = None if roots is None else [os.path.realpath(r) for r in roots]

    def check(self, path: str) -> None:
        if self._roots is None:
            return
        if not self._roots:
            raise ManifestRowError("local image paths are not accepted by this server "
                                   "(serve.image_roots is empty)")
        real = os.path.realpath(path)
        if not any(os.path.commonpath([real, root]) == root for root in self._roots):
            raise ManifestRowError(f"image path {path!r} is outside serve.image_roots")


class RewardService:
    """Scores batches of requests with one judge backend, built once and kept.

    `score` is thread-safe: calls are serialised (a backend serves one batch at a time), so a
    server gathers concurrent requests into batches before calling it. Scores of answered rows
    are kept by cache key (`serve.cache_size`); failures are not, so a retry is judged again.
    """

    def __init__(self, config: ClaimdiffConfig, *,
                 backend_factory: Callable[[JudgeSetup], JudgeBackend] = build_backend,
                 image_roots: Sequence[str] | None = None, check_model: bool = True) -> None:
        self.config = config
        self.setup = JudgeSetup.build(config, check_model=check_model)
        self._factory = backend_factory
        self._backend: JudgeBackend | None = None
        self._mapper = TypeMapper(config.taxonomy)
        self._roots = ImageRoots(image_roots)
        self._cache: OrderedDict[str, Derived] = OrderedDict()
        self._lock = threading.Lock()
        self.counters = ServiceCounters()

    @property
    def model_id(self) -> str:
        return self.setup.model_id

    def start(self) -> None:
        """Build the backend now (load the model) rather than on the first request."""
        with self._lock:
            self._ensure_backend()

    def _ensure_backend(self) -> JudgeBackend:
        if self._backend is None:
            self._backend = self._factory(self.setup)
        return self._backend

    def close(self) -> None:
        with self._lock:
            close = getattr(self._backend, "close", None)
            if callable(close):
                close()
            self._backend = None

    # --- scoring -------------------------------------------------------------------------

    def score(self, requests: Sequence[RewardRequest]) -> list[Score]:
        """One `Score` per request, in order. Raises only when the backend fails the whole
        batch (the caller answers every request of it as unavailable)."""
        scores: list[Score | None] = [None] * len(requests)
        items: dict[int, JudgeItem] = {}
        for index, request in enumerate(requests):
            prepared = self._prepare(index, request)
            if isinstance(prepared, Score):
                scores[index] = prepared
            else:
                items[index] = prepared
        with self._lock:
            self.counters.requests += len(requests)
            derived = self._judge([*items.values()])
            for index, item in items.items():
                scores[index] = derived[item.cache_key]
            done = [s for s in scores if s is not None]
            assert len(done) == len(requests)
            self.counters.scored += sum(s.ok for s in done)
            self.counters.failed += sum(not s.ok for s in done)
        return done

    def _prepare(self, index: int, request: RewardRequest) -> JudgeItem | Score:
        try:
            row = self._row(index, request)
        except RowError as exc:  # a text that is not one, a scheme not allowed
            return failed(Stage.VALIDATE, exc)
        try:
            image = self._image(request.image, row.image_uri)
        except (ClaimdiffError, OSError) as exc:
            return failed(Stage.LOAD_IMAGE, exc)
        return prepare((image, row), self.setup)

    def _row(self, index: int, request: RewardRequest) -> InputRow:
        if isinstance(request.image, str):
            uri = request.image
            if scheme_of(uri) == "file" and not os.path.isabs(uri.removeprefix("file://")):
                raise ManifestRowError(f"image path {uri!r} must be absolute (or a URI)")
            schemes = self.config.images.allowed_schemes
        else:
            uri, schemes = "memory://request", [*self.config.images.allowed_schemes, "memory"]
        record: dict[str, object] = {"image": uri, "reference": request.reference,
                                     "caption": request.caption}
        if request.sample_id is not None:
            record["sample_id"] = request.sample_id
        if request.gold is not None:
            record["gold"] = request.gold
        return validate_row(record, manifest=SERVE_MANIFEST, row_index=index,
                            allowed_schemes=schemes,
                            max_text_chars=self.config.manifest.max_text_chars)

    def _image(self, image: ImageInput, uri: str) -> LoadedImage:
        config = self.config.images
        if isinstance(image, Image.Image):
            return from_pixels(image, config, uri)
        if isinstance(image, bytes):
            return from_bytes(image, config, uri)
        if scheme_of(uri) == "file":
            self._roots.check(uri.removeprefix("file://"))
        return load_image(uri, config)

    def _judge(self, items: list[JudgeItem]) -> dict[str, Score]:
        """Scores by cache key: kept ones, then one judge call for the rest (a key repeated
        in the batch is judged once)."""
        scores: dict[str, Score] = {}
        todo: dict[str, JudgeItem] = {}
        for item in items:
            kept = self._cache.get(item.cache_key)
            if kept is not None:
                self._cache.move_to_end(item.cache_key)
                self.counters.cache_hits += 1
                scores[item.cache_key] = self._scored(kept, item.cache_key, cached=True)
            else:
                todo.setdefault(item.cache_key, item)
        if todo:
            backend = self._ensure_backend()
            self.counters.batches += 1
            self.counters.judged += len(todo)
            for result in judge_batch([*todo.values()], backend, self.setup):
                scores[result.item.cache_key] = self._derived(result)
        return scores

    def _derived(self, result: JudgeResult) -> Score:
        key = result.item.cache_key
        if not result.ok:
            return Score(stage=result.stage, error_class=result.error_class or "JudgeError",
                         error=result.error or "no answer", cache_key=key,
                         raw_answer=result.raw_output)
        try:
            derived = derive_result(result, RUN_ID, self.config, self.setup, self._mapper)
        except (ValueError, KeyError, JudgeOutputError) as exc:
            return Score(stage=Stage.DERIVE, error_class=type(exc).__name__, error=str(exc),
                         cache_key=key, raw_answer=result.raw_output)
        if self.config.serve.cache_size:
            self._cache[key] = derived
            while len(self._cache) > self.config.serve.cache_size:
                self._cache.popitem(last=False)
        return self._scored(derived, key, cached=False, raw=result.raw_output)

    def _scored(self, derived: Derived, key: str, *, cached: bool,
                raw: str | None = None) -> Score:
        values = {v.name: v.value for v in derived.rewards}
        return Score(stats=derived.stats, values=values, primary=self.config.rewards.primary,
                     cache_key=key, raw_answer=raw, cached=cached)


@dataclass(frozen=True)
class ServedReward:
    """The released reward server's three numbers for one scored request."""

    accuracy: float
    format: float
    final: float


def served_reward(stats: RewardStats, config: ClaimdiffConfig, preset_name: str,
                  format_ratio: float | None) -> ServedReward | None:
    """Accuracy (the preset without its format share), the format score, and the final reward
    `accuracy / (1 + r) + format * r / (1 + r)`, with `r` the request's `fmt_ratio` where it
    sends one and the preset's `format_ratio` otherwise (as the released server weighs them).
    None where the preset has no value for this row."""
    preset = next(p for p in config.rewards.presets if p.name == preset_name)
    own_ratio = getattr(preset, "format_ratio", 0.0)
    ratio = own_ratio if format_ratio is None else format_ratio
    plain = preset.model_copy(update={"format_ratio": 0.0}) if hasattr(
        preset, "format_ratio") else preset
    accuracy = reward_value(stats, plain, config.severity)
    if accuracy is None:
        return None
    fmt = format_score(stats, bool(getattr(preset, "require_think_block", False)))
    total = 1.0 + ratio
    return ServedReward(accuracy=accuracy, format=fmt,
                        final=accuracy * (1.0 / total) + fmt * (ratio / total))
