"""TRL's `GRPOTrainer` trains with `CaptionReward` as its reward function: a tiny random-weight
causal LM built offline, on CPU, judged in-process by a scripted judge backend that answers
most completions and leaves some unparseable.

What matters here: TRL forwards the dataset's reference and image columns to the reward
function, takes its None as "no reward" (NaN, left out of the group statistics and the logged
reward, never a 0), logs the unscored share CaptionReward reports through `log_metric`, and the
step still trains (a finite loss, weights that moved).

The image column is `image_path`, not `image`: TRL 1.16 reads a column named `image` (or
`images`) as the model's own input and switches to its multimodal path, which needs a vision
model and conversational prompts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path

import pytest

pytest.importorskip("trl")

import torch
from datasets import Dataset
from PIL import Image
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import GRPOConfig, GRPOTrainer

from claimdiff.config import load_config
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.serving.reward_funcs import CaptionReward
from claimdiff.serving.rewards import RewardRequest, RewardService, Score
from claimdiff.synth.render import png_bytes
from tests.conftest import diff, gold
from tests.support.tiny_vlm import (
    CHAT_TEMPLATE,
    IM_END,
    IM_START,
    PAD_TOKEN,
    train_tokenizer,
)

# Two valid judge answers that give different rewards (a group with both has an advantage to
# learn from), and one that is not a judge output at all.
HALLUCINATION = json.dumps(gold(diff("count", "three dogs", "two dogs", "reference",
                                     actor_error=("count", 3))))
AGREEMENT = json.dumps(gold(overall="tie"))
UNPARSEABLE = "not json"
# Decided per request in the order the judge first sees them, so each step's first group gets
# two different rewards and its second group one reward and one unscored completion.
SCRIPT = (HALLUCINATION, AGREEMENT, AGREEMENT, UNPARSEABLE)

NUM_GENERATIONS = 2
PROMPTS_PER_STEP = 2
MAX_STEPS = 2


@dataclass
class ScriptedJudge:
    """A judge backend whose answer to a request is fixed the first time it sees the request's
    key (a retry of an unparseable answer gets "not json" again, as a broken judge would)."""

    model_id: str = "scripted"
    answers: dict[str, str] = field(default_factory=dict)
    _next: Iterator[str] = field(init=False, default_factory=lambda: cycle(SCRIPT))

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        for request in requests:
            if request.key not in self.answers:
                self.answers[request.key] = next(self._next)
        return [RawAnswer(text=self.answers[r.key]) for r in requests]


@dataclass
class Recording:
    """The reward service, with what it was asked and what it answered kept for the test."""

    service: RewardService
    calls: list[tuple[list[RewardRequest], list[Score]]] = field(default_factory=list)

    def score(self, requests: Sequence[RewardRequest]) -> list[Score]:
        scores = self.service.score(requests)
        self.calls.append((list(requests), scores))
        return scores


def tiny_causal_lm() -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    tokenizer = train_tokenizer(special_tokens=[PAD_TOKEN, IM_START, IM_END],
                                pad_token=PAD_TOKEN, extra_special_tokens=[IM_START],
                                chat_template=CHAT_TEMPLATE, model_max_length=512)
    vocab = tokenizer.get_vocab()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=512, pad_token_id=vocab[PAD_TOKEN],
                         eos_token_id=vocab[IM_END], bos_token_id=None)
    return LlamaForCausalLM(config), tokenizer


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    rows = []
    for index, (colour, reference) in enumerate([((20, 120, 40), "Two dogs on green grass."),
                                                 ((200, 30, 30), "A red boat on a lake."),
                                                 ((30, 30, 200), "A blue car by a tree."),
                                                 ((220, 220, 40), "A yellow ball on sand.")]):
        path = tmp_path / f"image-{index}.png"
        path.write_bytes(png_bytes(Image.new("RGB", (32, 24), colour)))
        rows.append({"prompt": [{"role": "user", "content": "Describe the image."}],
                     "reference": reference, "image_path": str(path)})
    return Dataset.from_list(rows)


def test_grpo_trains_with_caption_reward(tmp_path: Path, dataset: Dataset) -> None:
    judge = ScriptedJudge()
    recording = Recording(RewardService(load_config(None), backend_factory=lambda setup: judge,
                                        image_roots=None))
    reward = CaptionReward(recording, image_column="image_path")
    model, tokenizer = tiny_causal_lm()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, report_to="none",
        max_steps=MAX_STEPS, logging_steps=1, save_strategy="no", learning_rate=1e-2,
        per_device_train_batch_size=NUM_GENERATIONS * PROMPTS_PER_STEP,
        num_generations=NUM_GENERATIONS, max_completion_length=8,
        # A random model may end at once; an empty caption would be refused before the judge
        # and shift the script. Eight tokens of noise are a caption the judge is asked about.
        generation_kwargs={"min_new_tokens": 8}, dataloader_num_workers=0, seed=0)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args,
                          train_dataset=dataset, processing_class=tokenizer)

    result = trainer.train()

    assert result.global_step == MAX_STEPS
    assert math.isfinite(result.training_loss)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, "no weight moved"

    # One reward call per step, with the dataset's own reference and image for every completion.
    assert len(recording.calls) == MAX_STEPS
    by_reference = {row["reference"]: row["image_path"] for row in dataset}
    for requests, _ in recording.calls:
        assert len(requests) == NUM_GENERATIONS * PROMPTS_PER_STEP
        assert all(by_reference[r.reference] == r.image for r in requests)
        assert all(r.caption for r in requests)

    # Every step had scored and unscored completions; the unscored ones were no reward, not 0.
    steps = [entry for entry in trainer.state.log_history if "claimdiff/unscored" in entry]
    assert len(steps) == MAX_STEPS
    for logged, (_, scores) in zip(steps, recording.calls, strict=True):
        values = [s.reward for s in scores if s.reward is not None]
        unscored = sum(not s.ok for s in scores)
        assert len(values) + unscored == len(scores)
        assert 0 < unscored < len(scores)
        assert logged["claimdiff/unscored"] == pytest.approx(unscored / len(scores))
        assert len(set(values)) > 1  # a group with something to learn from
        assert logged["grad_norm"] > 0
        assert logged["reward"] == pytest.approx(sum(values) / len(values))  # None left out
        assert logged[f"rewards/{reward.__name__}/mean"] == pytest.approx(
            sum(values) / len(values))
    assert sum(reward.unscored.values()) == sum(
        not s.ok for _, scores in recording.calls for s in scores)
    assert set(reward.unscored) == {"JudgeOutputError"}
