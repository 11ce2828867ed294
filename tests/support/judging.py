"""Judge-loop fixtures: a setup from overrides, an item for a row, scripted backends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from claimdiff.config import load_config
from claimdiff.io.images import LoadedImage
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer
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
