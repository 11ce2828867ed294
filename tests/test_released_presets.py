"""Every preset as a pure function of a row's statistics, on hand-computed cases, in both ways
of counting; and the labels counting of judge answers in the released formats. Expected values
are worked out in the comments (severity weights 1 -> 1.0, 2 -> 1.25, 3 -> 1.6, largest 1.6)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from claimdiff.config import (
    ActorOnlyPreset,
    AOnlyPreset,
    ClaimdiffConfig,
    HallVsMissPreset,
    HolisticPreset,
    JudgmentBasedPreset,
    LambdaPreset,
    NormalizedAOnlyPreset,
    NormalizedDiffPreset,
    RawDiffPreset,
    RelativePreset,
    RewardsConfig,
    SeverityConfig,
    TradeoffPreset,
    load_config,
)
from claimdiff.judges.formats.paper_text import parse_paper_text
from claimdiff.judges.judge_setup import decoding_params
from claimdiff.rewards.presets import compute_rewards, preset_values, reward_value
from claimdiff.rewards.stats import Provenance, derive, empty_stats
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.rows import Counts, InputRow, RewardStats

SEVERITY = SeverityConfig()


def counts(**values: Any) -> Counts:
    base: dict[str, Any] = {
        "differences": 0, "actor_errors": 0, "reference_errors": 0, "hallucinations": 0,
        "omissions": 0, "extra_correct": 0, "judged_actor": 0, "judged_reference": 0,
        "actor_weighted": 0.0, "reference_weighted": 0.0, "weighted_hallucination": 0.0,
        "weighted_omission": 0.0, "weighted_differences": 0.0}
    return Counts(**{**base, **values})


def stats(labels: Counts | None = None, **flat: Any) -> RewardStats:
    return empty_stats().model_copy(update={"labels": labels or counts(), **flat})


def value(preset: Any, row: RewardStats) -> float | None:
    return reward_value(row, preset, SEVERITY)


RELEASED_DEFAULTS = [NormalizedDiffPreset(name="x"), RawDiffPreset(name="x"),
                     AOnlyPreset(name="x"), NormalizedAOnlyPreset(name="x"),
                     JudgmentBasedPreset(name="x"), HallVsMissPreset(name="x")]


# --- no differences ----------------------------------------------------------------------------


@pytest.mark.parametrize(("preset", "expected"), [
    (NormalizedDiffPreset(name="x"), 0.5), (RawDiffPreset(name="x"), 0.5),
    (AOnlyPreset(name="x"), 1.0), (NormalizedAOnlyPreset(name="x"), 1.0),
    (JudgmentBasedPreset(name="x"), 0.5), (HallVsMissPreset(name="x"), 1.0),
    (RelativePreset(name="x"), 0.5), (ActorOnlyPreset(name="x"), 1.0),
    (TradeoffPreset(name="x"), 1.0), (LambdaPreset(name="x"), 1.0),
], ids=lambda v: getattr(v, "kind", ""))
@pytest.mark.parametrize("counting", ["outcomes", "labels"])
def test_no_differences(preset: Any, expected: float, counting: str):
    preset = preset.model_copy(update={"counting": counting})
    assert value(preset, stats(overall="actor")) == expected


# --- only reference errors ---------------------------------------------------------------------

# two differences, both the reference's errors (sev 3 and 2): outcomes and labels agree
ONLY_REFERENCE = counts(differences=2, reference_errors=2, judged_actor=2,
                        reference_weighted=1.6 + 1.25, weighted_differences=1.6 + 1.25)


def only_reference() -> RewardStats:
    return stats(ONLY_REFERENCE, n_differences=2, reference_errors=2, n_reference_error=2,
                 judged_actor=2, reference_weighted_errors=2.85, relative_denominator=2.85,
                 overall="actor")


@pytest.mark.parametrize("counting", ["outcomes", "labels"])
def test_only_reference_errors(counting: str):
    row = only_reference()
    # relative: 0.5 + 0.5 * (2 - 0) / 2 = 1.0; weighted the same (2.85 / 2.85)
    assert value(RelativePreset(name="r", counting=counting), row) == 1.0
    # normalized_diff: 0.5 - 0.5 * (0 - 2) / 2 = 1.0; weighted: (0 - 2.85) / (1.6 * 2) = -0.890625
    assert value(NormalizedDiffPreset(name="n", counting=counting), row) == 1.0
    assert value(NormalizedDiffPreset(name="n", counting=counting, severity_weighted=True),
                 row) == 0.5 + 0.5 * 0.890625
    # raw_diff: 0.5 - 0.5 * (-2 / 10) = 0.6
    assert value(RawDiffPreset(name="r", counting=counting), row) == 0.6
    # judgment_based: (2 - 0) / 2 = 1, overall A adds 0.1, capped at 1: 0.5 + 0.5 = 1.0
    assert value(JudgmentBasedPreset(name="j", counting=counting), row) == 1.0


@pytest.mark.parametrize("counting", ["outcomes", "labels"])
def test_actor_only_presets_never_charge_a_reference_error(counting: str):
    row = only_reference()
    assert value(AOnlyPreset(name="a", counting=counting), row) == 1.0
    assert value(ActorOnlyPreset(name="a", counting=counting), row) == 1.0  # clipped bonus
    # normalized_a_only: A = 0, D = 2: (0.05 + 0.95 * 1 ** 2) * exp(0) * (0.7 + 0.3 * log 3 /
    # log 11): the difficulty bonus of two differences, nothing charged
    expected = 1.0 * 1.0 * (0.7 + 0.3 * (math.log(3) / math.log(11)))
    assert value(NormalizedAOnlyPreset(name="a", counting=counting), row) == pytest.approx(
        expected, abs=1e-15)
    assert value(HallVsMissPreset(name="h", counting=counting), row) == 1.0
    assert value(LambdaPreset(name="l", counting=counting), row) == 1.0


# --- all both_supported ------------------------------------------------------------------------


def test_all_both_supported_differs_by_counting():
    """Three blocks the judge called both_supported: no real difference (outcomes), three
    differences without errors (labels: the released code counts every block)."""
    row = stats(counts(differences=3, weighted_differences=3.0), n_spurious=3)
    assert value(NormalizedDiffPreset(name="n"), row) == 0.5
    assert value(NormalizedDiffPreset(name="n", counting="labels"), row) == 0.5
    assert value(NormalizedAOnlyPreset(name="n"), row) == 1.0  # D = 0: perfect consistency
    # labels: D = 3, A = 0: 1 * 1 * (0.7 + 0.3 * log 4 / log 11)
    assert value(NormalizedAOnlyPreset(name="n", counting="labels"), row) == pytest.approx(
        0.7 + 0.3 * math.log(4) / math.log(11), abs=1e-15)
    assert value(JudgmentBasedPreset(name="j", counting="labels"), row) == 0.5  # all neutral


# --- weighted and unweighted -------------------------------------------------------------------

# actor: a sev-3 hallucination and a sev-2 omission; reference: one sev-1 error; 4 differences
MIXED = counts(differences=4, actor_errors=2, reference_errors=1, hallucinations=1, omissions=1,
               judged_actor=1, judged_reference=2, actor_weighted=1.6 + 1.25,
               reference_weighted=1.0, weighted_hallucination=1.6, weighted_omission=1.25,
               weighted_differences=1.6 + 1.25 + 1.0 + 1.0)


def mixed(**flat: Any) -> RewardStats:
    return stats(MIXED, **{"actor_words": 50, "reference_words": 80, **flat})


def test_normalized_diff_by_hand():
    row = mixed()
    # (2 - 1) / 4 = 0.25 -> 0.5 - 0.125
    assert value(NormalizedDiffPreset(name="n", counting="labels"), row) == 0.375
    # (2.85 - 1.0) / (1.6 * 4) = 0.2890625 -> 0.5 - 0.14453125
    assert value(NormalizedDiffPreset(name="n", counting="labels", severity_weighted=True),
                 row) == 0.5 - 0.5 * ((2.85 - 1.0) / (1.6 * 4))


def test_raw_diff_and_a_only_by_hand():
    row = mixed()
    # raw: (2 - 1) / 10 -> 0.45; weighted (2.85 - 1) / 10 -> 0.4075 (not scaled by the weight)
    assert value(RawDiffPreset(name="r", counting="labels"), row) == 0.45
    assert value(RawDiffPreset(name="r", counting="labels", severity_weighted=True), row) == (
        0.5 - 0.5 * ((2.85 - 1.0) / 10.0))
    # a_only: 1 - 2 / 10 = 0.8; weighted: 1 - 2.85 / (10 * 1.6)
    assert value(AOnlyPreset(name="a", counting="labels"), row) == 0.8
    assert value(AOnlyPreset(name="a", counting="labels", severity_weighted=True), row) == (
        1.0 - 2.85 / 16.0)
    # the error difference is clipped at max_error_diff
    assert value(RawDiffPreset(name="r", counting="labels", max_error_diff=0.5), row) == 0.0


def test_normalized_a_only_by_hand():
    row = mixed()
    # unweighted: density 2/4 = 0.5; (0.05 + 0.95 * 0.25) * exp(-2/4) * (0.7 + 0.3 * log 5/log 11)
    base = 0.05 + 0.95 * 0.5 ** 2
    bonus = math.log(5) / math.log(11)
    assert value(NormalizedAOnlyPreset(name="a", counting="labels"), row) == pytest.approx(
        base * math.exp(-0.5) * (0.7 + 0.3 * bonus), abs=1e-15)
    # weighted: density 2.85 / (1.6 * 4); count 2.85 / 1.6
    density = 2.85 / 6.4
    weighted = (0.05 + 0.95 * (1 - density) ** 2) * math.exp(-(2.85 / 1.6) / 4) * (
        0.7 + 0.3 * bonus)
    assert value(NormalizedAOnlyPreset(name="a", counting="labels", severity_weighted=True),
                 row) == pytest.approx(weighted, abs=1e-15)
    # D_max 4: the bonus is capped at 1
    assert value(NormalizedAOnlyPreset(name="a", counting="labels", d_max=4), row) == (
        pytest.approx(base * math.exp(-0.5), abs=1e-15))


def test_judgment_based_by_hand():
    # (1 - 2) / 4 = -0.25; overall B: -0.35 -> 0.5 - 0.5 * 0.35 = 0.325; A: -0.15 -> 0.425
    assert value(JudgmentBasedPreset(name="j", counting="labels"),
                 mixed(overall="reference")) == pytest.approx(0.325, abs=1e-15)
    assert value(JudgmentBasedPreset(name="j", counting="labels"),
                 mixed(overall="actor")) == pytest.approx(0.425, abs=1e-15)
    assert value(JudgmentBasedPreset(name="j", counting="labels"),
                 mixed(overall="tie")) == 0.375


def test_hall_vs_miss_by_hand():
    row = mixed(actor_ambiguity=3)
    # (1 + 1) / 4 -> 0.5
    assert value(HallVsMissPreset(name="h", counting="labels"), row) == 0.5
    # ambiguity before the scale: 0.5 * exp(-0.1 * (3 - 50/90)), then x2, clipped to 1
    factor = math.exp(-0.1 * (3 - 50 / 90))
    assert value(HallVsMissPreset(name="h", counting="labels", ambiguity_penalty=True,
                                  reward_scale=2.0), row) == min(1.0, 0.5 * factor * 2.0)
    assert value(HallVsMissPreset(name="h", counting="labels", ambiguity_penalty=True,
                                  reward_scale=1.5), row) == pytest.approx(
        0.5 * factor * 1.5, abs=1e-15)
    with pytest.raises(ValueError, match="severity_weighted must be false"):
        HallVsMissPreset(name="h", severity_weighted=True)


def test_claimdiff_presets_weighted_and_unweighted():
    row = mixed()
    # relative: 0.5 + 0.5 * (1 - 2) / 4 = 0.375; weighted 0.5 + 0.5 * (1 - 2.85) / 4.85
    assert value(RelativePreset(name="r", counting="labels", severity_weighted=False),
                 row) == 0.375
    assert value(RelativePreset(name="r", counting="labels"), row) == pytest.approx(
        0.5 + 0.5 * (1.0 - 2.85) / 4.85, abs=1e-15)
    # tradeoff lam 1: exp(-1.6 / 2); unweighted exp(-1 / 2)
    assert value(TradeoffPreset(name="t", counting="labels", lam=1.0), row) == math.exp(-0.8)
    assert value(TradeoffPreset(name="t", counting="labels", lam=1.0,
                                severity_weighted=False), row) == math.exp(-0.5)


def test_lambda_by_hand():
    row = mixed()
    # per 100 words: h = 1.6 / 0.5 = 3.2, o = 1.25 / 0.8 = 1.5625, e = 0
    lam = LambdaPreset(name="l", counting="labels", lam=0.25)
    assert value(lam, row) == math.exp(-(0.25 * 3.2 + 0.75 * 1.5625) / 5.0)
    # credit for 2 extra details per 50 words: e = 4, cost 2.7 - 0.5 * 4 = 0.7... below 0: > 1
    extra = mixed().model_copy(update={"labels": MIXED.model_copy(update={"extra_correct": 2})})
    credited = LambdaPreset(name="l", counting="labels", lam=0.25, extra_credit=0.5)
    assert value(credited, extra) == pytest.approx(
        math.exp(-(0.25 * 3.2 + 0.75 * 1.5625 - 0.5 * 4.0) / 5.0), abs=1e-15)
    # the length normalisation: the same errors in a caption twice as long cost half as much
    longer = stats(MIXED, actor_words=100, reference_words=80)
    only_h = LambdaPreset(name="l", counting="labels", lam=1.0)
    assert math.log(value(only_h, longer) or 0) == pytest.approx(
        math.log(value(only_h, row) or 0) / 2, abs=1e-12)


# --- the released mapping: scale, [min, max], ambiguity, format --------------------------------


def test_scale_and_min_max_mapping():
    row = mixed()
    # 0.375 * 2 = 0.75 -> [-1, 1]: -1 + 0.75 * 2 = 0.5
    assert value(NormalizedDiffPreset(name="n", counting="labels", reward_scale=2.0,
                                      min_reward=-1.0, max_reward=1.0), row) == 0.5
    # a scale that overshoots is clipped to 1 before mapping: max_reward
    assert value(NormalizedDiffPreset(name="n", counting="labels", reward_scale=10.0,
                                      min_reward=-1.0, max_reward=1.0), row) == 1.0
    with pytest.raises(ValueError, match="min_reward must not exceed max_reward"):
        NormalizedDiffPreset(name="n", min_reward=1.0, max_reward=0.0)


def test_ambiguity_penalty_after_the_mapping():
    row = mixed(actor_ambiguity=2, actor_words=45)
    # free tokens 45 / 90 = 0.5: 0.375 * exp(-0.1 * 1.5); a fixed free count of 3: no penalty
    assert value(NormalizedDiffPreset(name="n", counting="labels", ambiguity_penalty=True),
                 row) == 0.375 * math.exp(-0.1 * 1.5)
    assert value(NormalizedDiffPreset(name="n", counting="labels", ambiguity_penalty=True,
                                      ambiguity_free=3.0), row) == 0.375


def test_format_reward():
    row = mixed(actor_think_and_answer=False)
    # (accuracy + 0.5 * format) / 1.5 with the think block required and missing: 0.375 / 1.5
    preset = NormalizedDiffPreset(name="n", counting="labels", format_ratio=0.5,
                                  require_think_block=True)
    assert value(preset, row) == 0.375 * (1 / 1.5)
    assert value(preset, mixed(actor_think_and_answer=True)) == 0.375 * (1 / 1.5) + 0.5 / 1.5
    # without the requirement a non-empty answer is well formed
    assert value(preset.model_copy(update={"require_think_block": False}), row) == (
        0.375 * (1 / 1.5) + 0.5 / 1.5)


# --- nulls -------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", [*RELEASED_DEFAULTS, RelativePreset(name="x"),
                                    ActorOnlyPreset(name="x"), TradeoffPreset(name="x"),
                                    LambdaPreset(name="x")], ids=lambda p: p.kind)
def test_labels_counting_without_labels_is_null(preset: Any):
    row = empty_stats()  # a row written before labels were recorded
    assert value(preset.model_copy(update={"counting": "labels"}), row) is None
    assert value(preset, row) is not None


def test_holistic_by_hand_and_null_without_a_score():
    assert value(HolisticPreset(name="h"), stats(holistic_score=7)) == 0.7
    assert value(HolisticPreset(name="h", min_reward=-1.0), stats(holistic_score=5)) == 0.0
    assert value(HolisticPreset(name="h"), stats()) is None
    config = RewardsConfig(presets=[HolisticPreset(name="holistic")], primary="holistic")
    primary, values = compute_rewards(stats(), config)
    assert primary is None
    assert preset_values(values) == {"holistic": None}


def test_presets_from_config_and_the_cli_names():
    config = load_config("rewards:\n  primary: nd\n  presets:\n"
                         "    - {name: nd, kind: normalized_diff, counting: labels}\n"
                         "    - {name: na, kind: normalized_a_only, alpha: 3, d_max: 5}\n"
                         "    - {name: jb, kind: judgment_based}\n"
                         "    - {name: hm, kind: hall_vs_miss}\n"
                         "    - {name: ao, kind: a_only, max_error_diff: 4}\n"
                         "    - {name: rd, kind: raw_diff}\n"
                         "    - {name: ho, kind: holistic}\n"
                         "    - {name: l2, kind: lambda, lam: 0.2, extra_credit: 0.1}\n")
    kinds = [p.kind for p in config.rewards.presets]
    assert kinds == ["normalized_diff", "normalized_a_only", "judgment_based", "hall_vs_miss",
                     "a_only", "raw_diff", "holistic", "lambda"]
    assert not config.rewards.presets[0].severity_weighted  # the released default
    assert config.rewards.presets[-1].severity_weighted  # claimdiff's default


# --- labels counting of answers in the released formats ---------------------------------------

ROW = InputRow(manifest="m", row_index=0, image="a.png", image_uri="/a.png",
               reference="Two dogs sit on a green sofa.",
               caption="<think>hmm</think><answer>Three dogs sit on a red or orange sofa."
                       "</answer>", sample_id="s", actor_id="a")
ANSWER = """[DIFFERENCE 1]
ASPECT: number of dogs
CAPTION_A_CLAIM: There are three dogs.
CAPTION_B_CLAIM: There are two dogs.
JUDGMENT: B
CAPTION_A_ERROR:
ERROR_TYPE: count_mismatch
ERROR_DETAIL: three, not two
SEVERITY_LEVEL: 3
CAPTION_B_ERROR:
ERROR_TYPE: NONE
ERROR_DETAIL: No error.
SEVERITY_LEVEL: NA

[DIFFERENCE 2]
ASPECT: sofa colour
CAPTION_A_CLAIM: The sofa is red or orange.
CAPTION_B_CLAIM: The sofa is green.
JUDGMENT: A
CAPTION_A_ERROR:
ERROR_TYPE: color_misinterpretation
ERROR_DETAIL: hedges between red and orange
SEVERITY_LEVEL: 1
CAPTION_B_ERROR:
ERROR_TYPE: color_hallucination
ERROR_DETAIL: the sofa is red
SEVERITY_LEVEL: 3

[DIFFERENCE 3]
ASPECT: posture
CAPTION_A_CLAIM: The dogs sit.
CAPTION_B_CLAIM: The dogs are sitting.
JUDGMENT: both_supported
CAPTION_A_ERROR:
ERROR_TYPE: NONE
ERROR_DETAIL: No error.
SEVERITY_LEVEL: NA
CAPTION_B_ERROR:
ERROR_TYPE: NONE
ERROR_DETAIL: No error.
SEVERITY_LEVEL: NA

[OVERALL_WINNER]
B
"""


def test_labels_counting_of_a_released_answer_by_hand():
    config = ClaimdiffConfig()
    provenance = Provenance(run_id="r", image_sha256="0" * 64, judge_model="m",
                            prompt_version="p", decoding=decoding_params(config.judge),
                            cache_key="k", attempts=1)
    rows, row_stats = derive(ROW, parse_paper_text(ANSWER), provenance, config,
                             TypeMapper(config.taxonomy))
    # the judge labelled the actor in block 2 although the image supports it (judgment A):
    # outcomes ignore that label, labels count it
    assert rows[1].actor_erred is False
    assert (rows[1].actor_label_type, rows[1].actor_label_severity) == (
        "color_misinterpretation", 1)
    assert (row_stats.actor_errors, row_stats.reference_errors, row_stats.n_differences) == (
        1, 1, 2)
    labels = row_stats.labels
    assert labels is not None
    assert (labels.differences, labels.actor_errors, labels.reference_errors) == (3, 2, 1)
    assert (labels.judged_actor, labels.judged_reference) == (1, 1)
    assert labels.actor_weighted == 1.6 + 1.0
    assert row_stats.overall == "reference"
    # the caption's answer text is what is counted: "or" is one ambiguity token, 9 words
    assert (row_stats.actor_ambiguity, row_stats.actor_words) == (1, 9)
    assert row_stats.actor_think_and_answer

    # released normalized_diff, unweighted: (2 - 1) / 3 -> 0.5 - 0.5 / 3
    released = NormalizedDiffPreset(name="n", counting="labels")
    assert reward_value(row_stats, released, config.severity) == 0.5 - 0.5 * (1.0 / 3)
    # claimdiff's outcomes: (1 - 1) / 2 -> 0.5
    assert reward_value(row_stats, released.model_copy(update={"counting": "outcomes"}),
                        config.severity) == 0.5
    # judgment_based: (1 - 1) / 3 = 0, overall B: -0.1 -> 0.45
    assert reward_value(row_stats, JudgmentBasedPreset(name="j", counting="labels"),
                        config.severity) == 0.5 - 0.5 * 0.1
    # weighted with the released rule for every severity (USE_MODEL_JUDGE_SEVERITY=false):
    # count_mismatch 3 (1.6), color_misinterpretation 1 (1.0); color_hallucination 3 (1.6)
    paper = load_config("severity: {rule_set: paper, judge_severity: false}")
    _, paper_stats = derive(ROW, parse_paper_text(ANSWER), provenance, paper,
                            TypeMapper(paper.taxonomy))
    assert paper_stats.labels is not None
    assert paper_stats.labels.actor_weighted == 1.6 + 1.0
    assert paper_stats.labels.reference_weighted == 1.6
    weighted = released.model_copy(update={"severity_weighted": True})
    assert reward_value(paper_stats, weighted, paper.severity) == 0.5 - 0.5 * (
        (2.6 - 1.6) / (1.6 * 3))
