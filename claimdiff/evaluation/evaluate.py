"""`evaluate`: score one judge run against gold labels (the `claimdiff eval` command)."""

from __future__ import annotations

from claimdiff.config import ClaimdiffConfig
from claimdiff.evaluation import metrics
from claimdiff.evaluation.join import Joined, JoinedItem, join
from claimdiff.evaluation.load import GoldItem, load_gold, load_run, resolve_config
from claimdiff.evaluation.ordering import OrderingRow, PresetId, reward_ordering
from claimdiff.evaluation.report import EvaluationReport, RewardOrdering, SwapConsistency
from claimdiff.matching import (
    DEFAULT_THRESHOLD,
    Alignment,
    Scorer,
    align,
    lexical_score,
    scorer_name,
)

ACTOR_ID = "actor_id"
SWAP_NOTE = ("the run judged no row with the captions' roles swapped (judge.swap_fraction "
             "is 0)")


def swap_consistency(joined: Joined) -> SwapConsistency | None:
    checks = [item.run.reward.swap for item in joined.judged
              if item.run is not None and item.run.reward.swap is not None]
    if not checks:
        return None
    found = sum(c.original_differences + c.swapped_differences for c in checks)
    matched = sum(c.matched for c in checks)
    agreed = sum(c.judgment_agreements for c in checks)
    # no differences in either position: nothing to be consistent about, so no number
    return SwapConsistency(
        rows=len(checks),
        difference_consistency=metrics.ratio(2 * matched, found),
        judgment_consistency=metrics.ratio(agreed, matched))


def policy_of(item: GoldItem, column: str) -> str:
    """The policy a caption belongs to: its actor_id, or a metadata column of the gold row."""
    if column == ACTOR_ID:
        return item.row.actor_id
    value = item.metadata.get(column)
    return "(none)" if value is None else str(value)


def edit_of(item: GoldItem, column: str | None) -> str:
    """The edit label: the metadata column where the row has it, else the gold actor types."""
    if column is not None and item.metadata.get(column) is not None:
        return str(item.metadata[column])
    types = sorted({d.actor_canonical_type.value for d in item.differences
                    if d.actor_canonical_type is not None})
    return "+".join(types) or "none"


def _ordering_row(item: JoinedItem, edit_column: str | None) -> OrderingRow:
    run = item.run
    rewards = ({v.name: v.value for v in run.reward.rewards}
               if run is not None and run.judged else None)
    severities = [d.actor_severity for d in item.gold.differences if d.actor_severity is not None]
    return OrderingRow(
        sample_id=item.gold.row.sample_id, actor_errors=item.gold.stats.actor_errors,
        edit=edit_of(item.gold, edit_column), severity=max(severities, default=None),
        rewards=rewards, missing=run is None)


def _presets(joined: Joined) -> list[PresetId]:
    """Presets in the order the run wrote them (first judged row first)."""
    seen: dict[str, PresetId] = {}
    for item in joined.judged:
        assert item.run is not None
        for value in item.run.reward.rewards:
            seen.setdefault(value.name, PresetId(value.name, value.kind, value.version))
    return list(seen.values())


def ordering_checks(joined: Joined, edit_column: str | None) -> RewardOrdering:
    has_edit = edit_column is not None and any(
        edit_column in i.gold.metadata for i in joined.items)
    source = (f"metadata column {edit_column!r}" if has_edit
              else "gold canonical types of the edited caption's errors")
    return reward_ordering([_ordering_row(i, edit_column) for i in joined.items],
                           _presets(joined), source)


def evaluate(
    run_output: str,
    gold_manifest: str,
    *,
    config: ClaimdiffConfig | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    scorer: Scorer | None = None,
    policy_column: str = ACTOR_ID,
    edit_column: str | None = "edit",
) -> EvaluationReport:
    """Score the judge run in `run_output` against the `gold` labels of `gold_manifest`.

    `config` decides how gold labels are derived (taxonomy, severity rule) and which URI schemes
    the gold manifest may use; by default it is the run's own, from its `run.json`.
    `scorer` replaces the lexical matcher score; `policy_column` groups the per-policy rates;
    `edit_column` names the metadata column that labels edits in the ordering checks.
    """
    config, config_source = resolve_config(run_output, config)
    scorer = scorer or lexical_score
    joined = join(load_gold(gold_manifest, config), load_run(run_output))

    judged = joined.judged
    swap = swap_consistency(joined)
    alignments: list[Alignment] = []
    for item in judged:
        assert item.run is not None
        alignments.append(align(item.run.differences, item.gold.differences,
                                threshold=threshold, scorer=scorer))

    return EvaluationReport(
        run_output=run_output,
        gold_manifest=gold_manifest,
        config_source=config_source,
        matcher=scorer_name(scorer),
        threshold=threshold,
        join=joined.summary,
        actor_hallucination=metrics.detection(
            alignments, metrics.is_hallucination, metrics.actor_type),
        actor_omission=metrics.detection(alignments, metrics.is_omission, metrics.actor_type),
        reference_error=metrics.detection(
            alignments, metrics.is_reference_error, metrics.reference_type),
        outcome_confusion=metrics.confusion(alignments),
        severity=metrics.severity_agreement(alignments, metrics.actor_severity),
        reference_severity=metrics.severity_agreement(alignments, metrics.reference_severity),
        noise=metrics.noise_rates(alignments),
        policy_column=policy_column,
        policies=metrics.policy_balance(
            (policy_of(item.gold, policy_column), a)
            for item, a in zip(judged, alignments, strict=True)),
        reward_ordering=ordering_checks(joined, edit_column),
        swap_consistency=swap,
        not_computed={} if swap is not None else {"swap_consistency": SWAP_NOTE},
    )
