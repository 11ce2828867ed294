"""The content cache key: everything that determines a judge answer, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from claimdiff.schemas.rows import InputRow
from claimdiff.transforms.judge import cache_key
from tests.support.judging import setup_of

SHA = "ab" * 32


def row(**fields: Any) -> InputRow:
    values: dict[str, Any] = {"manifest": "m", "row_index": 0, "image": "a.png",
                              "image_uri": "/data/a.png", "reference": "Two dogs.",
                              "caption": "Three dogs.", "sample_id": "s", "actor_id": "a",
                              "gold": '{"differences": [], "overall": "same"}'}
    return InputRow(**(values | fields))


def test_the_labels_judge_answers_from_the_gold_so_the_gold_is_in_its_key() -> None:
    labels = setup_of(backend="labels")
    assert cache_key(labels, SHA, row()) != cache_key(
        labels, SHA, row(gold='{"differences": [], "overall": "actor"}'))
    assert cache_key(labels, SHA, row()) != cache_key(labels, SHA, row(gold=None))


def test_a_model_judge_never_sees_the_gold_so_it_is_not_in_its_key() -> None:
    model = setup_of(backend="transformers", model="/models/judge")
    assert cache_key(model, SHA, row()) == cache_key(model, SHA, row(gold=None))


@pytest.mark.parametrize("change", [
    {"manifest": "other.jsonl"}, {"row_index": 7}, {"image": "b.png"},
    {"image_uri": "/elsewhere/a.png"}, {"sample_id": "t"}, {"actor_id": "b"},
])
def test_where_a_row_comes_from_is_not_in_its_key(change: dict[str, Any]) -> None:
    for setup in (setup_of(backend="labels"),
                  setup_of(backend="transformers", model="/models/judge")):
        assert cache_key(setup, SHA, row()) == cache_key(setup, SHA, row(**change))


@pytest.mark.parametrize("change", [{"reference": "Two cats."}, {"caption": "Four dogs."}])
def test_the_texts_are_in_the_key(change: dict[str, Any]) -> None:
    setup = setup_of(backend="labels")
    assert cache_key(setup, SHA, row()) != cache_key(setup, SHA, row(**change))
    assert cache_key(setup, SHA, row()) != cache_key(setup, "cd" * 32, row())
