"""The reward functions trainers call: TRL's `reward_funcs` (in-process service) and verl's
`compute_score` (through a reward server on loopback). An unscorable completion is None for
TRL and an error, or an explicitly chosen and flagged score, for verl; never a silent 0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from claimdiff.config import load_config
from claimdiff.serving.reward_funcs import (
    CaptionReward,
    UnscoredError,
    completion_text,
    compute_score,
    compute_score_batch,
    image_input,
)
from claimdiff.serving.rewards import RewardRequest, RewardService
from tests.serving.conftest import Gate, Running


def open_service() -> tuple[RewardService, Gate]:
    gate = Gate()
    gate.opened.set()
    return RewardService(load_config(None), backend_factory=lambda setup: gate,
                         image_roots=None), gate


def test_caption_reward_scores_what_it_can_and_none_for_the_rest(image: Path) -> None:
    service, gate = open_service()
    reward = CaptionReward(service)
    pixels = Image.open(image)
    pixels.load()
    completions: list[Any] = [
        "Three dogs on grass.",
        [{"role": "assistant", "content": "Three dogs."}],
        [{"role": "assistant", "content": [{"type": "text", "text": "Three "},
                                           {"type": "image"}, {"type": "text", "text": "dogs."}]}],
        "Four dogs.",
        "UNPARSEABLE answer please",
        "Two images for one completion.",
        42,
    ]
    images: list[Any] = [str(image), pixels, {"bytes": image.read_bytes(), "path": None},
                         [str(image)], str(image), [str(image), str(image)], str(image)]
    logged: list[tuple[str, float]] = []
    values = reward(prompts=["Describe."] * len(completions), completions=completions,
                    reference=["Two dogs."] * len(completions), image=images,
                    log_metric=lambda key, value: logged.append((key, value)))
    expected = service.score([RewardRequest(image=str(image), reference="Two dogs.",
                                            caption="Three dogs.")])[0].reward
    assert expected is not None
    assert values[:4] == [expected] * 4  # the one answer the gate gives, whatever the form
    assert values[4:] == [None, None, None]
    assert reward.unscored == {"JudgeOutputError": 1, "ValueError": 1, "TypeError": 1}
    assert logged == [("claimdiff/unscored", 3 / 7)]
    assert gate.batches[0] == 5  # one judge call per step; the unreadable ones never reach it


def test_caption_reward_names_a_missing_column(image: Path) -> None:
    service, _ = open_service()
    with pytest.raises(KeyError, match="no 'reference' column"):
        CaptionReward(service)(prompts=["p"], completions=["c"], image=[str(image)])


@pytest.mark.parametrize(("value", "expected"), [
    ("text", "text"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "a"),
    ([{"role": "assistant", "content": [{"type": "text", "text": "x"}, "junk"]}], "x"),
])
def test_completion_text(value: Any, expected: str) -> None:
    assert completion_text(value) == expected


@pytest.mark.parametrize("value", [None, 3, [], ["not a message"], {"content": "x"}])
def test_completion_text_refuses_what_is_not_a_completion(value: Any) -> None:
    with pytest.raises(TypeError):
        completion_text(value)


@pytest.mark.parametrize("value", [None, 3, [], ["a", "b"], {"bytes": None, "path": None}])
def test_image_input_refuses_what_is_not_one_image(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        image_input(value)


@pytest.fixture
def server(start: Callable[..., Running]) -> Running:
    return start()


def verl_args(image: Path | None, caption: str = "Three dogs.") -> dict[str, Any]:
    info = {"index": 0, "split": "train"} | ({"image_path": str(image)} if image else {})
    return {"data_source": "claimdiff", "solution_str": caption, "ground_truth": "Two dogs.",
            "extra_info": info}


def test_verl_compute_score_through_the_server(server: Running, image: Path) -> None:
    scored = compute_score(**verl_args(image), server=server.url)
    status, body = server.post("/score", {"items": [
        {"image": str(image), "reference": "Two dogs.", "caption": "Three dogs."}]})
    assert status == 200
    assert scored["score"] == body["results"][0]["reward"]
    assert scored["claimdiff_unscored"] == 0.0
    assert scored["claimdiff_hallucinations"] == 1.0
    by_preset = compute_score(**verl_args(image), server=server.url, preset="actor_only")
    assert by_preset["score"] == body["results"][0]["rewards"]["actor_only"]


@pytest.mark.parametrize("case", ["unparseable answer", "no image in extra_info",
                                  "image outside the roots"])
def test_verl_never_scores_a_failure_silently(server: Running, image: Path, case: str) -> None:
    args = {"unparseable answer": verl_args(image, "UNPARSEABLE"),
            "no image in extra_info": verl_args(None),
            "image outside the roots": verl_args(Path("/etc/hostname"))}[case]
    with pytest.raises(UnscoredError, match="not scored"):
        compute_score(**args, server=server.url)
    assert compute_score(**args, server=server.url, failure_score=-1.0) == {
        "score": -1.0, "claimdiff_unscored": 1.0}


def test_verl_batch_keeps_the_order(server: Running, image: Path) -> None:
    cases = [verl_args(image), verl_args(image, "UNPARSEABLE"), verl_args(None),
             verl_args(image, "Four dogs.")]
    cases[3]["extra_info"] = {"images": [{"bytes": image.read_bytes()}]}
    results = compute_score_batch([c["data_source"] for c in cases],
                                  [c["solution_str"] for c in cases],
                                  [c["ground_truth"] for c in cases],
                                  [c["extra_info"] for c in cases],
                                  server=server.url, failure_score=0.0)
    single = compute_score(**verl_args(image), server=server.url)
    assert [r["claimdiff_unscored"] for r in results] == [0.0, 1.0, 1.0, 0.0]
    assert results[0] == single
    assert results[3]["score"] == single["score"]
    with pytest.raises(UnscoredError):
        compute_score_batch(["claimdiff"], ["UNPARSEABLE"], ["Two dogs."],
                            [{"image_path": str(image)}], server=server.url)
