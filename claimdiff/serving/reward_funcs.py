"""claimdiff rewards as a trainer's reward function: TRL's `reward_funcs` and verl's
`compute_score`, judged in-process (a `RewardService`) or by a reward server (`RemoteScorer`).

A completion that cannot be scored gets no number. TRL takes None as "no reward" for that
completion (it becomes NaN, which GRPO leaves out of the group's statistics), so
`CaptionReward` returns None for it. verl has no such value: `compute_score` raises
`UnscoredError` unless the caller chose a `failure_score` explicitly, in which case the
returned dict carries `claimdiff_unscored = 1.0` so the substitution is counted in verl's
reward metrics rather than hidden in the mean.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from PIL import Image

from claimdiff.config import load_config
from claimdiff.errors import ClaimdiffError
from claimdiff.serving.rewards import ImageInput, RewardRequest, RewardService, Score

log = logging.getLogger(__name__)


class Scorer(Protocol):
    def score(self, requests: Sequence[RewardRequest]) -> list[Score]: ...


class UnscoredError(ClaimdiffError):
    """A completion could not be scored and no `failure_score` was chosen."""


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a string, or a conversation whose last message is the
    model's (its content a string or a list of parts, of which the text ones count)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content
                           if isinstance(p, dict) and p.get("type") == "text")
    raise TypeError(f"a completion must be text or a list of messages, got "
                    f"{type(completion).__name__}")


def image_input(value: Any) -> ImageInput:
    """A dataset's image cell: a PIL image, a path or URI, encoded bytes, the `{"bytes",
    "path"}` struct of an undecoded `datasets.Image`, or a list holding exactly one of these."""
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ValueError(f"the judge reads one image per completion, got {len(value)}")
        value = value[0]
    if isinstance(value, Image.Image | str | bytes):
        return value
    if isinstance(value, Mapping):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path"):
            return str(value["path"])
    raise TypeError(f"not an image: {type(value).__name__}")


class CaptionReward:
    """A TRL reward function: `GRPOTrainer(reward_funcs=[CaptionReward(scorer)])`.

    Reads the reference from the dataset column `reference_column` and the image from
    `image_column`; returns the preset's value per completion, None where it has none. With
    TRL's `log_metric` it logs the share of unscored completions as `claimdiff/unscored`.
    """

    def __init__(self, scorer: Scorer, *, preset: str | None = None,
                 reference_column: str = "reference", image_column: str = "image",
                 name: str | None = None) -> None:
        self._scorer = scorer
        self._preset = preset
        self._reference_column = reference_column
        self._image_column = image_column
        self.__name__ = name or f"claimdiff_{preset or 'reward'}"
        self.unscored: Counter[str] = Counter()  # error class -> completions, over all calls

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 **columns: Any) -> list[float | None]:
        for column in (self._reference_column, self._image_column):
            if column not in columns:
                raise KeyError(f"the dataset has no {column!r} column (columns: "
                               f"{sorted(k for k in columns if not k.startswith('log_'))})")
        requests: list[RewardRequest | None] = []
        for completion, reference, image in zip(
                completions, columns[self._reference_column], columns[self._image_column],
                strict=True):
            try:
                requests.append(RewardRequest(image=image_input(image), reference=reference,
                                              caption=completion_text(completion)))
            except (TypeError, ValueError) as exc:
                log.warning("completion not scored: %s", exc)
                self.unscored[type(exc).__name__] += 1
                requests.append(None)
        asked = [r for r in requests if r is not None]
        scores = iter(self._scorer.score(asked))
        rewards: list[float | None] = []
        for request in requests:
            score = next(scores) if request is not None else None
            rewards.append(self._value(score) if score is not None else None)
        log_metric: Callable[[str, float], None] | None = columns.get("log_metric")
        if log_metric is not None and rewards:
            log_metric("claimdiff/unscored", sum(r is None for r in rewards) / len(rewards))
        return rewards

    def _value(self, score: Score) -> float | None:
        if not score.ok:
            self.unscored[score.error_class or "unscored"] += 1
            log.warning("completion not scored (%s at %s): %s", score.error_class,
                        score.stage, score.error)
            return None
        value = score.values.get(self._preset) if self._preset else score.reward
        if value is None:
            self.unscored["no_value"] += 1
        return value


# --- verl ------------------------------------------------------------------------------------

_services: dict[tuple[str | None, str | None], Scorer] = {}
_services_lock = threading.Lock()


def scorer_for(config: str | None = None, server: str | None = None,
               token: str | None = None) -> Scorer:
    """One scorer per process and (config, server): a reward server's client where `server`
    is given, else an in-process `RewardService` of the config file (defaults where None)."""
    key = (config, server)
    with _services_lock:
        if key not in _services:
            if server is not None:
                from claimdiff.serving.client import RemoteScorer

                _services[key] = RemoteScorer(server, token=token)
            else:
                _services[key] = RewardService(load_config(config))
        return _services[key]


def _image_of(extra_info: Mapping[str, Any] | None) -> ImageInput:
    info = extra_info or {}
    for key in ("image_path", "image", "images"):
        if info.get(key) is not None:
            return image_input(info[key])
    raise ValueError("extra_info has no image_path (claimdiff export verl writes one)")


def _verl_result(score: Score, preset: str | None, failure_score: float | None
                 ) -> dict[str, float]:
    value = (score.values.get(preset) if preset else score.reward) if score.ok else None
    if value is None:
        if failure_score is None:
            raise UnscoredError(f"completion not scored ({score.error_class} at {score.stage}): "
                                f"{score.error}; pass failure_score to substitute a value")
        return {"score": failure_score, "claimdiff_unscored": 1.0}
    assert score.stats is not None
    return {"score": value, "claimdiff_unscored": 0.0,
            "claimdiff_differences": float(score.stats.n_differences),
            "claimdiff_hallucinations": float(score.stats.n_actor_hallucination),
            "claimdiff_omissions": float(score.stats.n_actor_omission)}


def compute_score(data_source: str, solution_str: str, ground_truth: str,
                  extra_info: Mapping[str, Any] | None = None, *, config: str | None = None,
                  server: str | None = None, preset: str | None = None,
                  failure_score: float | None = None, token: str | None = None,
                  **_: Any) -> dict[str, float]:
    """verl's per-sample reward function (`custom_reward_function.path` = this module,
    `name` = `compute_score`; `reward_kwargs` pass `config`, `server`, `preset`,
    `failure_score`). `ground_truth` is the reference, `extra_info.image_path` the image."""
    del data_source
    scorer = scorer_for(config, server, token)
    try:
        request = RewardRequest(image=_image_of(extra_info), reference=ground_truth,
                                caption=solution_str)
    except (TypeError, ValueError) as exc:
        return _verl_result(Score(error_class=type(exc).__name__, error=str(exc)), preset,
                            failure_score)
    return _verl_result(scorer.score([request])[0], preset, failure_score)


def compute_score_batch(data_sources: Sequence[str], solution_strs: Sequence[str],
                        ground_truths: Sequence[str],
                        extra_infos: Sequence[Mapping[str, Any] | None], *,
                        config: str | None = None, server: str | None = None,
                        preset: str | None = None, failure_score: float | None = None,
                        token: str | None = None, **_: Any) -> list[dict[str, float]]:
    """verl's batch reward function (`reward_model.reward_manager=batch`): one judge batch for
    the whole step's completions."""
    del data_sources
    scorer = scorer_for(config, server, token)
    requests: list[RewardRequest | Score] = []
    for caption, reference, info in zip(solution_strs, ground_truths, extra_infos, strict=True):
        try:
            requests.append(RewardRequest(image=_image_of(info), reference=reference,
                                          caption=caption))
        except (TypeError, ValueError) as exc:
            requests.append(Score(error_class=type(exc).__name__, error=str(exc)))
    scores = iter(scorer.score([r for r in requests if isinstance(r, RewardRequest)]))
    return [_verl_result(next(scores) if isinstance(r, RewardRequest) else r, preset,
                         failure_score) for r in requests]

