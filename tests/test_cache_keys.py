"""The content cache key: everything that determines a judge answer, and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from claimdiff.config import load_config
from claimdiff.judges.judge_setup import JudgeSetup
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


def model_folder(path: Path, weights: bytes = b"\x00\x01" * 512) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llava"}')
    (path / "model.safetensors").write_bytes(weights)
    (path / "sub" / "tokenizer.json").write_text("{}")
    (path / ".cache").mkdir()
    (path / ".cache" / "lock").write_text("machine-specific")
    return path


def built(model: Path) -> JudgeSetup:
    config = load_config(None, {"judge.backend": "transformers", "judge.model": str(model)})
    return JudgeSetup.build(config)


def test_moved_weights_are_the_same_judge_and_changed_weights_another(tmp_path: Path) -> None:
    here = built(model_folder(tmp_path / "here"))
    shutil.copytree(tmp_path / "here", tmp_path / "elsewhere" / "copy",
                    ignore=shutil.ignore_patterns(".cache"))
    moved = built(tmp_path / "elsewhere" / "copy")
    assert here.model_id != moved.model_id  # the path as typed, for people
    assert here.model_digest is not None
    assert here.model_digest.startswith("sha256:")
    assert here.judge_identity == moved.judge_identity == here.model_digest
    assert cache_key(here, SHA, row()) == cache_key(moved, SHA, row())
    changed = built(model_folder(tmp_path / "changed", weights=b"\x00\x02" * 512))
    assert cache_key(changed, SHA, row()) != cache_key(here, SHA, row())
    renamed = tmp_path / "elsewhere" / "copy" / "sub" / "tokenizer.json"
    renamed.rename(renamed.with_name("tokenizer2.json"))
    assert built(tmp_path / "elsewhere" / "copy").judge_identity != here.judge_identity


def test_a_hub_id_is_named_by_its_name() -> None:
    config = load_config(None, {"judge.backend": "transformers", "judge.model": "org/judge-7b"})
    setup = JudgeSetup.build(config)
    assert setup.model_digest is None
    assert setup.judge_identity == "org/judge-7b"


def test_the_pixels_version_is_in_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import claimdiff.transforms.judge as judge_stage

    setup = setup_of(backend="labels")
    before = cache_key(setup, SHA, row())
    monkeypatch.setattr(judge_stage, "PIXELS_VERSION", judge_stage.PIXELS_VERSION + "-next")
    assert cache_key(setup, SHA, row()) != before
