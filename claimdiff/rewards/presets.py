"""Reward presets: small pure functions of `RewardStats`, selected and parameterised by config.

Every preset reads only the statistics, so rewards can be recomputed from written `rewards/`
rows (or re-derived `differences/`) without calling the judge again.
"""

from __future__ import annotations

import math

from claimdiff.config import (
    ActorOnlyPreset,
    Preset,
    RelativePreset,
    RewardsConfig,
    TradeoffPreset,
)
from claimdiff.schemas.rows import RewardStats, RewardValue


def _actor_and_reference(stats: RewardStats, weighted: bool) -> tuple[float, float, float]:
    if weighted:
        return (
            stats.actor_weighted_errors,
            stats.reference_weighted_errors,
            stats.relative_denominator,
        )
    return float(stats.actor_errors), float(stats.reference_errors), float(stats.n_differences)


def relative(stats: RewardStats, preset: RelativePreset) -> float:
    """Actor errors against reference errors on the same differences, 0.5 when none differ.

    >>> from claimdiff.rewards.stats import empty_stats
    >>> relative(empty_stats(), RelativePreset(name="r"))
    0.5
    """
    actor, reference, denominator = _actor_and_reference(stats, preset.severity_weighted)
    if denominator <= 0:
        return 0.5
    return min(1.0, max(0.0, 0.5 + 0.5 * (reference - actor) / denominator))


def actor_only(stats: RewardStats, preset: ActorOnlyPreset) -> float:
    """Only the actor's own errors count: exp(-decay * share) - count penalty + richness bonus."""
    actor, _, denominator = _actor_and_reference(stats, preset.severity_weighted)
    share = actor / denominator if denominator > 0 else 0.0
    value = math.exp(-preset.decay * share)
    value -= preset.count_penalty * (1.0 - math.exp(-actor / preset.count_scale))
    richness = min(stats.n_differences, preset.richness_cap) / preset.richness_cap
    value += preset.richness_bonus * richness
    return min(1.0, max(0.0, value))


def tradeoff(stats: RewardStats, preset: TradeoffPreset) -> float:
    """exp(-(lam * H + (1 - lam) * O) / scale): lam trades hallucination H against omission O."""
    if preset.severity_weighted:
        hallucination, omission = stats.weighted_hallucination, stats.weighted_omission
    else:
        hallucination, omission = float(stats.n_actor_hallucination), float(stats.n_actor_omission)
    return math.exp(-(preset.lam * hallucination + (1.0 - preset.lam) * omission) / preset.scale)


def reward_value(stats: RewardStats, preset: Preset) -> float:
    if isinstance(preset, RelativePreset):
        return relative(stats, preset)
    if isinstance(preset, ActorOnlyPreset):
        return actor_only(stats, preset)
    return tradeoff(stats, preset)


def compute_rewards(stats: RewardStats, config: RewardsConfig) -> tuple[float, list[RewardValue]]:
    """Every configured preset, plus the primary one's value."""
    values = [
        RewardValue(name=p.name, kind=p.kind, version=p.version, value=reward_value(stats, p))
        for p in config.presets
    ]
    primary = next(v.value for v in values if v.name == config.primary)
    return primary, values
