"""One judge result -> its difference rows, statistics and rewards: what the `Derive` stage
does for every row of a run, and the reward service for every request."""

from __future__ import annotations

from dataclasses import dataclass

from claimdiff.config import ClaimdiffConfig
from claimdiff.judges.formats.hall_vs_miss import parse_hall_vs_miss
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.records import JudgeResult
from claimdiff.rewards.presets import compute_rewards
from claimdiff.rewards.stats import Provenance, derive
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.rows import DifferenceRow, RewardStats, RewardValue


@dataclass(frozen=True)
class Derived:
    differences: list[DifferenceRow]
    stats: RewardStats
    reward: float | None  # the primary preset's value
    rewards: list[RewardValue]


def derive_result(result: JudgeResult, run_id: str, config: ClaimdiffConfig, setup: JudgeSetup,
                  mapper: TypeMapper) -> Derived:
    """Outcomes, types, severities and every configured preset for one answered row.

    Raises `ValueError`, `KeyError` or `JudgeOutputError` for an answer that validates but
    cannot be derived (the caller makes it a failure at stage derive, never a reward)."""
    if result.output is None:
        raise ValueError("a row without a judge output has nothing to derive")
    item, row = result.item, result.item.row
    provenance = Provenance(
        run_id=run_id, image_sha256=item.image.sha256, judge_model=setup.model_id,
        prompt_version=setup.prompt_version, decoding=setup.decoding,
        cache_key=item.cache_key, attempts=result.attempts)
    # the hall_vs_miss answer's own records (the parsed output holds them as claim
    # differences): the same text, parsed again, one record per difference
    hall = (parse_hall_vs_miss(result.raw_output)
            if config.judge.output_format == "hall_vs_miss" else None)
    differences, stats = derive(row, result.output, provenance, config, mapper,
                                result.first_judgments, result.verify_disagreements, hall=hall,
                                holistic_score=result.holistic_score)
    reward, rewards = compute_rewards(stats, config.rewards, config.severity)
    return Derived(differences, stats, reward, rewards)
