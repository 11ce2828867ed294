"""Statistics and rewards on hand-checkable judge outputs; the expected numbers are worked out
by hand in the comments (default severity weights 1 -> 1.0, 2 -> 1.25, 3 -> 1.6)."""

from __future__ import annotations

import math

import pytest

from claimdiff.config import (
    ActorOnlyPreset,
    ClaimdiffConfig,
    RelativePreset,
    RewardsConfig,
    TradeoffPreset,
)
from claimdiff.judges.judge_setup import decoding_params
from claimdiff.rewards.presets import actor_only, compute_rewards, relative, tradeoff
from claimdiff.rewards.stats import (
    Provenance,
    count_hedges,
    derive,
    empty_stats,
    label_counts,
)
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.judge import JudgeOutput
from claimdiff.schemas.rows import InputRow, Outcome
from tests.conftest import diff, gold

CONFIG = ClaimdiffConfig()
ROW = InputRow(manifest="m", row_index=0, image="a.png", image_uri="/a.png",
               reference="Two dogs sit on a red sofa near a lamp.",
               caption="Three dogs possibly sit on a sofa.", sample_id="s", actor_id="a")
PROVENANCE = Provenance(run_id="r", image_sha256="0" * 64, judge_model="m", prompt_version="p",
                        decoding=decoding_params(CONFIG.judge), cache_key="k", attempts=1)


def _derive(*differences: dict):
    output = JudgeOutput.model_validate(gold(*differences))
    return derive(ROW, output, PROVENANCE, CONFIG, TypeMapper(CONFIG.taxonomy))


def test_mixed_case_by_hand():
    rows, stats = _derive(
        # conflict, image says reference: actor hallucination, count, sev 3 -> weight 1.6
        diff("number of dogs", "Three dogs.", "Two dogs.", "reference",
             actor_error=("count_mismatch", 3)),
        # reference only, image says reference: actor omission, colour, no severity -> rule 2
        diff("sofa colour", None, "The sofa is red.", "reference",
             actor_error=("color_omission", None)),
        # reference only, image says actor: reference hallucination (the lamp is not there)
        diff("lamp", None, "There is a lamp.", "actor",
             reference_error=("object_hallucination", 3)),
        # both supported: spurious, not a real difference
        diff("pose", "The dogs sit.", "The dogs are sitting.", "both_supported"),
    )
    assert [r.outcomes for r in rows] == [
        [Outcome.ACTOR_HALLUCINATION], [Outcome.ACTOR_OMISSION],
        [Outcome.REFERENCE_HALLUCINATION], [Outcome.SPURIOUS]]
    assert rows[1].actor_severity == 2
    assert rows[1].actor_severity_source == "rule"
    assert rows[2].actor_erred is False
    assert rows[2].reference_severity == 3
    assert stats.n_differences == 3
    assert (stats.actor_errors, stats.reference_errors, stats.n_spurious) == (2, 1, 1)
    assert (stats.actor_severity_2, stats.actor_severity_3) == (1, 1)
    assert stats.actor_weighted_errors == pytest.approx(1.6 + 1.25)
    assert stats.reference_weighted_errors == pytest.approx(1.6)
    assert stats.weighted_hallucination == pytest.approx(1.6)
    assert stats.weighted_omission == pytest.approx(1.25)
    # denominator: max weight per real difference = 1.6 + 1.25 + 1.6
    assert stats.relative_denominator == pytest.approx(4.45)
    assert stats.actor_errors_by_type.count == 1
    assert stats.actor_errors_by_type.color == 1
    assert (stats.actor_words, stats.reference_words, stats.actor_hedges) == (7, 10, 1)

    # relative, weighted: 0.5 + 0.5 * (1.6 - 2.85) / 4.45
    assert relative(stats, RelativePreset(name="r")) == pytest.approx(0.5 + 0.5 * -1.25 / 4.45)
    # relative, counts: 0.5 + 0.5 * (1 - 2) / 3
    assert relative(stats, RelativePreset(name="r", severity_weighted=False)) == pytest.approx(
        0.5 - 0.5 / 3)
    # actor_only: share 2.85/4.45; exp(-2 share) - 0.2 (1 - exp(-2.85/4)) + 0.05 * 3/8
    share = 2.85 / 4.45
    expected = math.exp(-2 * share) - 0.2 * (1 - math.exp(-2.85 / 4)) + 0.05 * 3 / 8
    assert actor_only(stats, ActorOnlyPreset(name="a")) == pytest.approx(expected)
    # tradeoff lam=1 sees only the hallucination, lam=0 only the omission
    assert tradeoff(stats, TradeoffPreset(name="h", lam=1.0)) == pytest.approx(math.exp(-1.6 / 2))
    assert tradeoff(stats, TradeoffPreset(name="o", lam=0.0)) == pytest.approx(
        math.exp(-1.25 / 2))


def test_both_wrong_conflict_counts_against_both():
    rows, stats = _derive(diff("dogs", "Three dogs.", "Two dogs.", "both_wrong",
                               actor_error=("count_mismatch", 3),
                               reference_error=("count_mismatch", 2)))
    assert rows[0].outcomes == [Outcome.ACTOR_HALLUCINATION, Outcome.REFERENCE_ERROR]
    assert (stats.actor_errors, stats.reference_errors) == (1, 1)
    # 0.5 + 0.5 * (1.25 - 1.6) / 1.6
    assert relative(stats, RelativePreset(name="r")) == pytest.approx(0.5 - 0.5 * 0.35 / 1.6)


def test_side_that_erred_without_a_label_still_counts():
    rows, stats = _derive(diff("a cat", "A cat sleeps.", None, "reference"))
    assert rows[0].actor_canonical_type == "other"
    assert rows[0].actor_severity == CONFIG.severity.default
    assert stats.actor_errors == 1


def test_no_difference_and_only_noise():
    _, stats = _derive()
    assert stats == empty_stats().model_copy(update={
        "actor_words": 7, "reference_words": 10, "actor_hedges": 1, "judge_attempts": 1,
        "overall": "reference", "actor_ambiguity": 1, "labels": label_counts([], CONFIG.severity)})
    assert stats.labels is not None
    assert (stats.labels.differences, stats.labels.actor_errors) == (0, 0)
    assert relative(stats, RelativePreset(name="r")) == 0.5
    assert actor_only(stats, ActorOnlyPreset(name="a")) == 1.0
    assert tradeoff(stats, TradeoffPreset(name="t")) == 1.0
    _, noisy = _derive(diff("x", "a", None, "uncertain"), diff("y", None, "b", "both_supported"))
    assert (noisy.n_differences, noisy.n_unverifiable, noisy.n_spurious) == (0, 1, 1)
    assert relative(noisy, RelativePreset(name="r")) == 0.5


def test_extra_correct_detail_is_credit_not_error():
    _, stats = _derive(diff("lamp", "A lamp stands behind.", None, "actor"))
    assert (stats.n_actor_extra_correct, stats.actor_errors) == (1, 0)
    assert relative(stats, RelativePreset(name="r")) == 0.5
    assert actor_only(stats, ActorOnlyPreset(name="a")) == 1.0  # clipped: 1 + bonus


def test_rewards_stay_in_range_and_order_by_errors():
    one = _derive(diff("c", "Red.", "Blue.", "reference", actor_error=("color_mismatch", 2)))[1]
    two = _derive(diff("c", "Red.", "Blue.", "reference", actor_error=("color_mismatch", 2)),
                  diff("n", "Three.", "Two.", "reference", actor_error=("count_mismatch", 3)))[1]
    config = RewardsConfig()
    for stats in (one, two):
        _, values = compute_rewards(stats, config)
        assert all(0.0 <= v.value <= 1.0 for v in values)
    for preset in config.presets:
        first = next(v for v in compute_rewards(one, config)[1] if v.name == preset.name)
        second = next(v for v in compute_rewards(two, config)[1] if v.name == preset.name)
        assert second.value <= first.value, preset.name


def test_primary_reward_and_preset_validation():
    config = RewardsConfig(presets=[TradeoffPreset(name="hall", lam=0.8)], primary="hall")
    primary, values = compute_rewards(empty_stats(), config)
    assert primary == 1.0
    assert [(v.name, v.kind, v.version) for v in values] == [("hall", "tradeoff", 1)]
    with pytest.raises(ValueError, match=r"rewards\.primary 'relative' is not one of"):
        RewardsConfig(presets=[TradeoffPreset(name="hall")])
    with pytest.raises(ValueError, match="names must be unique"):
        RewardsConfig(presets=[RelativePreset(name="x"), TradeoffPreset(name="x")], primary="x")


def test_hedges_are_whole_phrases():
    assert count_hedges("Possibly a dog, maybe two; it may be a wolf.", CONFIG.rewards.hedges) == 3
    assert count_hedges("A maybelline ad.", CONFIG.rewards.hedges) == 0
