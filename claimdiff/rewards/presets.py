"""Reward presets: pure functions of one row's `RewardStats` (README: How a difference is scored).

Every preset reads a `Counts` (`counts_for`): the outcomes counting (claimdiff's, the default)
or the labels counting (the released ClaimDiff-RL code's). With A and B the actor's and the
reference's errors (severity-weighted where the preset says so), D the differences, H and O the
actor's hallucinations and omissions, E its correct extra details:

- claimdiff's: `relative`, `actor_only`, `tradeoff`, `lambda`;
- the released code's modes, formula for formula (`normalized_diff`, `normalized_a_only`,
  `a_only`, `raw_diff`, `judgment_based`, `hall_vs_miss`) with its reward scale, [min, max]
  mapping, ambiguity penalty and format reward, and the holistic baseline (`holistic`).

A preset has no value (None) where it has nothing to read: labels counting on a row written
before labels were recorded, a holistic preset on a row without a holistic score. Failed rows
never reach a preset: their rewards are null.

The released formulas are written operation for operation in the released order, so that on the
same counts they give the same floating-point values, not merely close ones.
"""

from __future__ import annotations

import math

from claimdiff.config import (
    ActorOnlyPreset,
    AOnlyPreset,
    HallVsMissPreset,
    HolisticPreset,
    JudgmentBasedPreset,
    LambdaPreset,
    NormalizedAOnlyPreset,
    NormalizedDiffPreset,
    Preset,
    RawDiffPreset,
    RelativePreset,
    RewardsConfig,
    SeverityConfig,
    TradeoffPreset,
)
from claimdiff.schemas.rows import Counts, RewardStats, RewardValue

_Released = (NormalizedDiffPreset | RawDiffPreset | AOnlyPreset | NormalizedAOnlyPreset
             | JudgmentBasedPreset | HallVsMissPreset)


def outcome_counts(stats: RewardStats) -> Counts:
    """The outcomes counting, from the row's flat statistics."""
    return Counts(
        differences=stats.n_differences, actor_errors=stats.actor_errors,
        reference_errors=stats.reference_errors, hallucinations=stats.n_actor_hallucination,
        omissions=stats.n_actor_omission, extra_correct=stats.n_actor_extra_correct,
        judged_actor=stats.judged_actor, judged_reference=stats.judged_reference,
        actor_weighted=stats.actor_weighted_errors,
        reference_weighted=stats.reference_weighted_errors,
        weighted_hallucination=stats.weighted_hallucination,
        weighted_omission=stats.weighted_omission,
        weighted_differences=stats.relative_denominator)


def counts_for(stats: RewardStats, counting: str) -> Counts | None:
    return outcome_counts(stats) if counting == "outcomes" else stats.labels


def _errors(counts: Counts, weighted: bool) -> tuple[float, float]:
    if weighted:
        return counts.actor_weighted, counts.reference_weighted
    return float(counts.actor_errors), float(counts.reference_errors)


# --- claimdiff's presets -----------------------------------------------------------------------


def relative(stats: RewardStats, preset: RelativePreset) -> float | None:
    """Actor errors against reference errors on the same differences, 0.5 when none differ.

    >>> from claimdiff.rewards.stats import empty_stats
    >>> relative(empty_stats(), RelativePreset(name="r"))
    0.5
    """
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    actor, reference = _errors(counts, preset.severity_weighted)
    denominator = (counts.weighted_differences if preset.severity_weighted
                   else float(counts.differences))
    if denominator <= 0:
        return 0.5
    return min(1.0, max(0.0, 0.5 + 0.5 * (reference - actor) / denominator))


def actor_only(stats: RewardStats, preset: ActorOnlyPreset) -> float | None:
    """Only the actor's own errors count: exp(-decay * share) - count penalty + richness bonus."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    actor, _ = _errors(counts, preset.severity_weighted)
    denominator = (counts.weighted_differences if preset.severity_weighted
                   else float(counts.differences))
    share = actor / denominator if denominator > 0 else 0.0
    value = math.exp(-preset.decay * share)
    value -= preset.count_penalty * (1.0 - math.exp(-actor / preset.count_scale))
    richness = min(counts.differences, preset.richness_cap) / preset.richness_cap
    value += preset.richness_bonus * richness
    return min(1.0, max(0.0, value))


def _hallucination_omission(counts: Counts, weighted: bool) -> tuple[float, float]:
    if weighted:
        return counts.weighted_hallucination, counts.weighted_omission
    return float(counts.hallucinations), float(counts.omissions)


def tradeoff(stats: RewardStats, preset: TradeoffPreset) -> float | None:
    """exp(-(lam * H + (1 - lam) * O) / scale): lam trades hallucination H against omission O."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    hallucination, omission = _hallucination_omission(counts, preset.severity_weighted)
    return math.exp(-(preset.lam * hallucination + (1.0 - preset.lam) * omission) / preset.scale)


def lambda_counts(stats: RewardStats, preset: LambdaPreset) -> tuple[float, float, float] | None:
    """(H, O, E): hallucinations and omissions (severity-weighted where the preset says so)
    and correct extra details, in the preset's counting."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    hallucination, omission = _hallucination_omission(counts, preset.severity_weighted)
    return hallucination, omission, float(counts.extra_correct)


def lambda_rates(stats: RewardStats, preset: LambdaPreset) -> tuple[float, float, float] | None:
    """(h, o, e): H and E per `per_words` words of the actor caption, O per `per_words` words
    of the reference (`lambda_counts`). An empty caption counts as one word."""
    counts = lambda_counts(stats, preset)
    if counts is None:
        return None
    hallucination, omission, extra = counts
    actor_units = max(stats.actor_words, 1) / preset.per_words
    reference_units = max(stats.reference_words, 1) / preset.per_words
    return hallucination / actor_units, omission / reference_units, extra / actor_units


def lambda_cost(stats: RewardStats, preset: LambdaPreset) -> float | None:
    """lam * h + (1 - lam) * o - extra_credit * e (see `lambda_rates`)."""
    rates = lambda_rates(stats, preset)
    if rates is None:
        return None
    h, o, e = rates
    return preset.lam * h + (1.0 - preset.lam) * o - preset.extra_credit * e


def lambda_value(stats: RewardStats, preset: LambdaPreset) -> float | None:
    """exp(-cost / scale): 1 for a caption without hallucinations or omissions."""
    cost = lambda_cost(stats, preset)
    return None if cost is None else math.exp(-cost / preset.scale)


# --- the released code's modes -----------------------------------------------------------------


def _clip01(value: float) -> float:
    return max(0.0, min(1.0, value))


def _mapped(base: float, preset: _Released) -> float:
    """reward_scale, then [0, 1], then [min_reward, max_reward] (the released mapping)."""
    scaled = _clip01(base * preset.reward_scale)
    reward = preset.min_reward + scaled * (preset.max_reward - preset.min_reward)
    return max(preset.min_reward, min(preset.max_reward, reward))


def ambiguity_factor(stats: RewardStats, preset: _Released) -> float:
    """exp(-decay * max(0, ambiguity tokens - free tokens)); 1 without the penalty."""
    if not preset.ambiguity_penalty:
        return 1.0
    if preset.ambiguity_free is not None:
        free = preset.ambiguity_free
    else:
        free = max(0.0, stats.actor_words / preset.ambiguity_free_words_per_token)
    return math.exp(-preset.ambiguity_decay * max(0, stats.actor_ambiguity - free))


def format_score(stats: RewardStats, require_think_block: bool) -> float:
    """The released format reward: <think> and <answer> blocks, or a non-empty answer."""
    if require_think_block:
        return 1.0 if stats.actor_think_and_answer else 0.0
    return 0.0 if stats.actor_answer_empty else 1.0


def _with_format(accuracy: float, stats: RewardStats,
                 preset: _Released | HolisticPreset) -> float:
    """The reward server's final reward: accuracy and format weighted 1 : format_ratio."""
    total = 1.0 + preset.format_ratio
    return (accuracy * (1.0 / total)
            + format_score(stats, preset.require_think_block) * (preset.format_ratio / total))


def _diff_to_reward(difference: float, preset: _Released) -> float:
    """A difference in [-1, 1] (negative: the actor is better) -> 0.5 - 0.5 * difference."""
    return _mapped(0.5 - 0.5 * max(-1.0, min(1.0, difference)), preset)


def _finish(reward: float, stats: RewardStats, preset: _Released) -> float:
    return _with_format(reward * ambiguity_factor(stats, preset), stats, preset)


def normalized_diff(stats: RewardStats, preset: NormalizedDiffPreset,
                    severity: SeverityConfig) -> float | None:
    """(A - B) / D, weighted: (A - B) / (max weight * D); 0 when D is 0; -> 0.5 - 0.5 x."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    actor, reference = _errors(counts, preset.severity_weighted)
    total = counts.differences
    if total > 0:
        raw = actor - reference
        if preset.severity_weighted:
            difference = raw / (severity.max_weight * total)
        else:
            difference = raw / total
    else:
        difference = 0.0
    return _finish(_diff_to_reward(difference, preset), stats, preset)


def raw_diff(stats: RewardStats, preset: RawDiffPreset) -> float | None:
    """clip(A - B, +-max_error_diff) / max_error_diff -> 0.5 - 0.5 x."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    actor, reference = _errors(counts, preset.severity_weighted)
    limit = preset.max_error_diff
    clamped = max(-limit, min(limit, actor - reference))
    return _finish(_mapped(0.5 - 0.5 * (clamped / limit), preset), stats, preset)


def a_only(stats: RewardStats, preset: AOnlyPreset, severity: SeverityConfig) -> float | None:
    """1 - clip(A, 0, M) / M with M = max_error_diff, times the largest weight when weighted."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    actor, _ = _errors(counts, preset.severity_weighted)
    max_weight = severity.max_weight if preset.severity_weighted else 1.0
    limit = preset.max_error_diff * max_weight if max_weight > 1.0 else preset.max_error_diff
    clamped = max(0.0, min(limit, actor))
    return _finish(_mapped(1.0 - clamped / limit, preset), stats, preset)


def normalized_a_only_base(actor: float, differences: int, preset: NormalizedAOnlyPreset,
                           max_weight: float) -> float:
    """The released `normalized_a_only_reward` (before scale and mapping)."""
    differences = max(differences, 1)
    density = actor / (max_weight * differences) if max_weight > 1.0 else actor / differences
    density = min(max(density, 0.0), 1.0)
    base = preset.epsilon + (1 - preset.epsilon) * (1 - density) ** preset.alpha
    count = actor / max_weight if max_weight > 1.0 else actor
    penalty = math.exp(-count / preset.k)
    bonus = min(1.0, math.log(1 + differences) / math.log(1 + preset.d_max))
    return base * penalty * (0.7 + 0.3 * bonus)


def normalized_a_only(stats: RewardStats, preset: NormalizedAOnlyPreset,
                      severity: SeverityConfig) -> float | None:
    """The released actor-only reward; 1 before mapping when nothing differs."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    actor, _ = _errors(counts, preset.severity_weighted)
    if counts.differences == 0:
        base = 1.0
    else:
        max_weight = severity.max_weight if preset.severity_weighted else 1.0
        base = normalized_a_only_base(actor, counts.differences, preset, max_weight)
    return _finish(_mapped(base, preset), stats, preset)


def judgment_based(stats: RewardStats, preset: JudgmentBasedPreset) -> float | None:
    """(A wins - B wins) / D, moved by the overall verdict, -> 0.5 + 0.5 x; 0.5 when D is 0."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    total = counts.differences
    if total > 0:
        judged = (counts.judged_actor - counts.judged_reference) / total
        if stats.overall == "actor":
            judged = min(1.0, judged + preset.overall_contribution)
        elif stats.overall == "reference":
            judged = max(-1.0, judged - preset.overall_contribution)
        difference = -judged
    else:
        difference = 0.0
    return _finish(_diff_to_reward(difference, preset), stats, preset)


def hall_vs_miss(stats: RewardStats, preset: HallVsMissPreset) -> float | None:
    """1 - clip((H + O) / D); the ambiguity penalty applies before the scale, as released."""
    counts = counts_for(stats, preset.counting)
    if counts is None:
        return None
    total = counts.differences
    penalty = counts.hallucinations + counts.omissions
    difference = penalty / total if total > 0 else 0.0
    base = 1.0 - max(0.0, min(1.0, difference))
    base *= ambiguity_factor(stats, preset)
    return _with_format(_mapped(base, preset), stats, preset)


def holistic(stats: RewardStats, preset: HolisticPreset) -> float | None:
    """score / 10 mapped to [min_reward, max_reward]; None without a holistic score."""
    if stats.holistic_score is None:
        return None
    reward = stats.holistic_score / 10.0
    reward = preset.min_reward + reward * (preset.max_reward - preset.min_reward)
    reward = max(preset.min_reward, min(preset.max_reward, reward))
    return _with_format(reward, stats, preset)


# --- dispatch ----------------------------------------------------------------------------------


def reward_value(stats: RewardStats, preset: Preset,
                 severity: SeverityConfig | None = None) -> float | None:
    """One preset's value for one row (`severity`: the weights the released modes normalise
    by; the run's `severity` config)."""
    severity = severity or SeverityConfig()
    if isinstance(preset, RelativePreset):
        return relative(stats, preset)
    if isinstance(preset, ActorOnlyPreset):
        return actor_only(stats, preset)
    if isinstance(preset, TradeoffPreset):
        return tradeoff(stats, preset)
    if isinstance(preset, LambdaPreset):
        return lambda_value(stats, preset)
    if isinstance(preset, NormalizedDiffPreset):
        return normalized_diff(stats, preset, severity)
    if isinstance(preset, RawDiffPreset):
        return raw_diff(stats, preset)
    if isinstance(preset, AOnlyPreset):
        return a_only(stats, preset, severity)
    if isinstance(preset, NormalizedAOnlyPreset):
        return normalized_a_only(stats, preset, severity)
    if isinstance(preset, JudgmentBasedPreset):
        return judgment_based(stats, preset)
    if isinstance(preset, HallVsMissPreset):
        return hall_vs_miss(stats, preset)
    return holistic(stats, preset)


def compute_rewards(stats: RewardStats, config: RewardsConfig,
                    severity: SeverityConfig | None = None
                    ) -> tuple[float | None, list[RewardValue]]:
    """Every configured preset, plus the primary one's value."""
    values = [
        RewardValue(name=p.name, kind=p.kind, version=p.version,
                    value=reward_value(stats, p, severity))
        for p in config.presets
    ]
    primary = next(v.value for v in values if v.name == config.primary)
    return primary, values


def preset_values(values: list[RewardValue]) -> dict[str, float | None]:
    """`rewards` as the flat `preset_values` column: name -> value."""
    return {v.name: v.value for v in values}
