"""The reward service: the batch run's rewards for the same rows, one failure per unscorable
request (never a number), the cache, the image roots."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from claimdiff.config import ClaimdiffConfig, load_config
from claimdiff.judges.backends.base import Decoding, JudgeBackend, JudgeRequest, RawAnswer
from claimdiff.judges.backends.labels import LabelsBackend
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.schemas.rows import Stage
from claimdiff.serving.rewards import RewardRequest, RewardService, served_reward
from claimdiff.synth.render import png_bytes
from claimdiff.synth.sample import write_sample
from tests.conftest import diff, gold
from tests.pipeline_support import read, run


class Counting:
    """The labels judge, counting the batches and requests it answers."""

    def __init__(self, setup: JudgeSetup) -> None:
        self._inner = LabelsBackend(setup.config.output_format)
        self.model_id = self._inner.model_id
        self.batches: list[int] = []

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        self.batches.append(len(requests))
        return self._inner.judge(requests, decoding)


def counting_service(config: ClaimdiffConfig | None = None, **options: Any
                     ) -> tuple[RewardService, list[Counting]]:
    made: list[Counting] = []

    def factory(setup: JudgeSetup) -> JudgeBackend:
        made.append(Counting(setup))
        return made[-1]

    return RewardService(config or load_config(None), backend_factory=factory,
                         **options), made


HALLUCINATED = gold(diff("count", "three dogs", "two dogs", "reference",
                         actor_error=("count", 3)))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "images" / "a.png"
    path.parent.mkdir()
    path.write_bytes(png_bytes(Image.new("RGB", (32, 24), (20, 120, 40))))
    return path


def request(image: Path | str | bytes | Image.Image, **fields: Any) -> RewardRequest:
    values: dict[str, Any] = {"reference": "Two dogs.", "caption": "Three dogs.",
                              "gold": json.dumps(HALLUCINATED)}
    values.update(fields)
    return RewardRequest(image=str(image) if isinstance(image, Path) else image, **values)


def test_scores_are_the_batch_runs_rewards(tmp_path: Path) -> None:
    """Every row of a sample manifest, judged by a run and by the service: the same presets,
    the same statistics, the same failures."""
    overrides = {"run.max_failure_share": 1.0}
    manifest = write_sample(str(tmp_path / "data"), images=3, actors=3, seed=2)
    run(manifest, tmp_path / "run", overrides)
    rewards = {(r["row_index"]): r for r in read(tmp_path / "run", "rewards")}
    failures = {(r["row_index"]): r for r in read(tmp_path / "run", "failures")}
    service, _ = counting_service(load_config(None, overrides))
    lines = Path(manifest).read_text().splitlines()
    indexed = [(i, json.loads(line)) for i, line in enumerate(lines)]
    rows = [(i, r) for i, r in indexed if i in rewards or (
        i in failures and failures[i]["stage"] == "load_image")]
    assert len(rows) >= 9
    scores = service.score([
        RewardRequest(image=os.path.join(tmp_path / "data", r["image"]),
                      reference=r["reference"], caption=r["caption"],
                      gold=json.dumps(r["gold"])) for _, r in rows])
    for (index, _), score in zip(rows, scores, strict=True):
        if index in failures:
            assert not score.ok
            assert score.stage is Stage.LOAD_IMAGE
            assert score.reward is None
            assert score.values == {}
            continue
        expected = rewards[index]
        assert score.ok
        assert score.values == expected["preset_values"]
        assert score.reward == expected["reward"]
        assert score.stats is not None
        assert score.stats.model_dump(mode="json") == expected["stats"]
        assert score.cache_key == expected["cache_key"], "the run's cache key, too"


def _unscorable(image: Path, tmp_path: Path) -> list[tuple[str, RewardRequest, Stage]]:
    outside = tmp_path / "outside.png"
    outside.write_bytes(image.read_bytes())
    link = image.parent / "link.png"
    link.symlink_to(outside)
    return [
        ("blank reference", request(image, reference=" \u200b "), Stage.VALIDATE),
        ("relative path", request("images/a.png"), Stage.VALIDATE),
        ("path outside the roots", request(outside), Stage.LOAD_IMAGE),
        ("link out of the roots", request(link), Stage.LOAD_IMAGE),
        ("dot-dot out of the roots", request(f"{image.parent}/../outside.png"),
         Stage.LOAD_IMAGE),
        ("missing image", request(image.parent / "nope.png"), Stage.LOAD_IMAGE),
        ("not an image", request(b"GIF89a but not really"), Stage.LOAD_IMAGE),
        ("truncated image", request(image.read_bytes()[:60]), Stage.LOAD_IMAGE),
        ("disallowed scheme", request("ftp://example.com/a.png"), Stage.VALIDATE),
        ("private host", request("http://169.254.169.254/a.png"), Stage.VALIDATE),
        ("caption too long", request(image, caption="x" * 60_000), Stage.VALIDATE),
        # captions of their own: a request with the good one's content shares its cache key
        # (the gold is what the labels judge answers, not part of what is judged)
        ("gold not a judge answer",
         request(image, caption="A cat.", gold='{"differences": "none"}'), Stage.JUDGE),
        ("no gold for the labels judge", request(image, caption="A bird.", gold=None),
         Stage.JUDGE),
    ]


def test_unscorable_requests_get_a_stage_and_a_reason_never_a_number(
        image: Path, tmp_path: Path) -> None:
    cases = _unscorable(image, tmp_path)
    service, _ = counting_service(image_roots=[str(image.parent)])
    good = request(image)
    scores = service.score([good, *(c[1] for c in cases), good])
    assert scores[0].ok
    assert scores[-1].ok
    assert scores[0].reward is not None
    for (name, _, stage), score in zip(cases, scores[1:-1], strict=True):
        assert not score.ok, name
        assert (score.reward, score.values, score.stats) == (None, {}, None), name
        assert score.stage is stage, (name, score.stage, score.error)
        assert score.error_class, name
        assert score.error, name
    assert service.counters.failed == len(cases)
    assert service.counters.scored == 2


@pytest.fixture
def image_server(image: Path) -> Iterator[str]:
    """The image's folder over HTTP on loopback."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(image.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.mark.parametrize("allowed", [True, False])
def test_http_images_follow_the_host_policy(image_server: str, allowed: bool) -> None:
    config = load_config(None, {"images.allowed_schemes": ["file", "http"],
                                "images.allowed_hosts": ["127.0.0.1"] if allowed else []})
    service, _ = counting_service(config)
    [score] = service.score([request(f"{image_server}/a.png")])
    if allowed:
        assert score.ok
    else:
        assert score.stage is Stage.LOAD_IMAGE, score
        assert "loopback" in (score.error or ""), score


def test_local_paths_are_refused_without_image_roots(image: Path) -> None:
    service, _ = counting_service(image_roots=[])
    [score] = service.score([request(image)])
    assert score.stage is Stage.LOAD_IMAGE
    assert "serve.image_roots" in (score.error or "")


def test_images_as_bytes_pixels_and_paths_score_alike(image: Path) -> None:
    service, _ = counting_service()
    pixels = Image.open(image)
    pixels.load()
    scores = service.score([request(image), request(image.read_bytes()), request(pixels)])
    assert all(s.ok for s in scores)
    assert len({s.reward for s in scores}) == 1
    # a path and its bytes are the same content; decoded pixels hash differently
    assert scores[0].cache_key == scores[1].cache_key != scores[2].cache_key
    assert pixels.size == (32, 24), "the caller's image is never resized in place"


def test_repeated_requests_are_judged_once(image: Path) -> None:
    service, made = counting_service()
    first = service.score([request(image), request(image), request(image, caption="Two dogs.")])
    assert made[0].batches == [2], "a key repeated within a batch is judged once"
    again = service.score([request(image)])
    assert made[0].batches == [2], "a kept score is not judged again"
    assert again[0].cached
    assert not first[0].cached
    assert again[0].values == first[0].values
    assert service.counters.cache_hits == 1
    assert service.counters.judged == 2


def test_failures_are_not_kept(image: Path) -> None:
    service, made = counting_service()
    broken = request(image, gold="not json")
    service.score([broken])
    calls = len(made[0].batches)  # the first attempt and its retries
    service.score([broken])
    assert len(made[0].batches) == 2 * calls


def test_the_cache_is_bounded(image: Path) -> None:
    service, made = counting_service(load_config(None, {"serve.cache_size": 1}))
    a, b = request(image), request(image, caption="One dog.")
    service.score([a])
    service.score([b])
    service.score([a])
    assert made[0].batches == [1, 1, 1]


def test_no_cache(image: Path) -> None:
    service, made = counting_service(load_config(None, {"serve.cache_size": 0}))
    service.score([request(image)])
    service.score([request(image)])
    assert made[0].batches == [1, 1]


@pytest.mark.parametrize(("ratio", "think"), [(None, False), (0.0, False), (0.5, False),
                                              (1.0, True), (3.0, True)])
def test_served_reward_weighs_accuracy_and_format(image: Path, ratio: float | None,
                                                  think: bool) -> None:
    config = load_config(None, {
        "rewards.presets": [{"kind": "normalized_diff", "name": "nd", "format_ratio": 0.25,
                             "require_think_block": True}],
        "rewards.primary": "nd"})
    service, _ = counting_service(config)
    caption = "<think>look</think><answer>Three dogs.</answer>" if think else "Three dogs."
    [score] = service.score([request(image, caption=caption)])
    assert score.stats is not None
    served = served_reward(score.stats, config, "nd", ratio)
    assert served is not None
    r = 0.25 if ratio is None else ratio
    assert served.format == (1.0 if think else 0.0)
    assert served.final == pytest.approx(served.accuracy / (1 + r) + served.format * r / (1 + r))
    if ratio is None:
        assert served.final == pytest.approx(score.values["nd"]), \
            "with the preset's own ratio the final reward is the preset's value"
