"""Judge-loop fixtures: a setup from overrides, an item for a row, scripted backends."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from claimdiff.config import load_config
from claimdiff.io.images import LoadedImage
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer, Role
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.records import JudgeItem
from claimdiff.schemas.rows import InputRow


def setup_of(**judge: Any) -> JudgeSetup:
    """The setup of a configuration with these `judge.*` settings (no model is checked)."""
    config = load_config(None, {f"judge.{key}": value for key, value in judge.items()})
    return JudgeSetup.build(config, check_model=False)


def item(setup: JudgeSetup, *, reference: str = "There are two dogs.",
         caption: str = "There are three dogs.", gold: str | None = None, key: str = "k",
         index: int = 0) -> JudgeItem:
    row = InputRow(manifest="m", row_index=index, image="a.png", image_uri="/a.png",
                   reference=reference, caption=caption, sample_id="s", actor_id=f"a{index}",
                   gold=gold)
    image = LoadedImage("/a.png", "0" * 64, 4, 4, Image.new("RGB", (4, 4)))
    return JudgeItem(row=row, image=image,
                     prompt=setup.render(setup.prompt, reference=reference, caption=caption),
                     cache_key=key)


class Replay:
    """Answers every request with the next scripted answer; records the requests."""

    model_id = "replay"

    def __init__(self, *answers: RawAnswer) -> None:
        self._answers = list(answers)
        self.calls = 0
        self.requests: list[JudgeRequest] = []

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        self.calls += 1
        self.requests.extend(requests)
        return [self._answers.pop(0) for _ in requests]


class LoggedLabels:
    """The labels judge, writing one line per backend call to `log`: the roles of its requests.
    A backend runs in Beam's workers, so a file is what the caller can read back. `pause_s` per
    request stands in for a GPU judge's latency (benchmarks/reruns.py)."""

    def __init__(self, log: Path, pause_s: float = 0.0) -> None:
        from claimdiff.judges.backends.labels import LabelsBackend

        self._log = log
        self._pause_s = pause_s
        self._labels = LabelsBackend()

    @property
    def model_id(self) -> str:
        return self._labels.model_id

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        time.sleep(self._pause_s * len(requests))
        with self._log.open("a") as handle:
            handle.write(" ".join(str(r.role) for r in requests) + "\n")
        return self._labels.judge(requests, decoding)


def logged_calls(log: Path) -> list[list[str]]:
    """The roles of each call `LoggedLabels` answered, in call order."""
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def first_pass_requests(log: Path) -> int:
    return sum(call.count(str(Role.JUDGE)) for call in logged_calls(log))
