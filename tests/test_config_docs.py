"""The configuration explains itself: every field described, printed as commented YAML that
loads back, files checked with one line, CLI choices taken from the models."""

from __future__ import annotations

import typing

import pytest

from claimdiff.cli import build_parser, main
from claimdiff.config import ClaimdiffConfig, JudgeConfig, load_config
from claimdiff.config_docs import commented_yaml, config_models


@pytest.mark.parametrize("model", list(config_models()), ids=lambda m: m.__name__)
def test_every_configuration_field_is_described(model):
    undescribed = [name for name, info in model.model_fields.items() if not info.description]
    assert undescribed == []


def test_the_commented_defaults_load_back_as_the_defaults():
    text = commented_yaml()
    assert load_config(text) == ClaimdiffConfig()
    # every key is under a comment the first time it appears
    assert "# two_pass adds a verification call" in text


def test_a_changed_configuration_round_trips():
    config = load_config(None, {"judge.mode": "two_pass", "severity.weights": {1: 1, 2: 2, 3: 3},
                                "rewards.primary": "actor_only"})
    assert load_config(commented_yaml(config)) == config


def test_config_command_prints_and_checks(tmp_path, capsys):
    assert main(["config"]) == 0
    assert load_config(capsys.readouterr().out) == ClaimdiffConfig()
    good = tmp_path / "good.yaml"
    good.write_text("judge:\n  mode: two_pass\n")
    assert main(["config", "--check", str(good)]) == 0
    assert "mode: two_pass" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("judge:\n  mdoe: two_pass\n")
    assert main(["config", "--check", str(bad)]) == 2
    assert "unknown key judge.mdoe (did you mean judge.mode" in capsys.readouterr().err


def test_cli_choices_come_from_the_config_models():
    judge = build_parser()._subparsers._group_actions[0].choices["judge"]  # type: ignore[union-attr]
    action = next(a for a in judge._actions if "--judge" in a.option_strings)
    assert list(action.choices) == list(typing.get_args(
        JudgeConfig.model_fields["backend"].annotation))
    assert "judge.mode [single_pass | two_pass]" in judge.epilog
    assert "judge.swap_fraction" in judge.epilog
    assert "judge.output_format [json | paper_text | hall_vs_miss]" in judge.epilog
