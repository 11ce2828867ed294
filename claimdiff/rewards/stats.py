"""From one judge output to difference rows and per (sample, actor) statistics."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from claimdiff.config import ClaimdiffConfig
from claimdiff.rewards.outcomes import (
    actor_erred,
    difference_kind,
    outcomes_of,
    reference_erred,
)
from claimdiff.rewards.taxonomy import TypeMapper, severity_of
from claimdiff.schemas.judge import ErrorLabel, JudgeOutput, Judgment
from claimdiff.schemas.rows import (
    CanonicalType,
    DecodingParams,
    DifferenceRow,
    InputRow,
    Outcome,
    RewardStats,
    SeveritySource,
    TypeCounts,
)


@dataclass(frozen=True)
class Provenance:
    """What every derived row of one judge call carries besides the judge's words."""

    run_id: str
    image_sha256: str
    judge_model: str
    prompt_version: str
    decoding: DecodingParams
    cache_key: str
    attempts: int


def empty_stats() -> RewardStats:
    return RewardStats(
        n_differences=0, n_actor_hallucination=0, n_actor_omission=0, n_actor_extra_correct=0,
        n_reference_hallucination=0, n_reference_error=0, n_spurious=0, n_unverifiable=0,
        actor_errors=0, reference_errors=0, actor_severity_1=0, actor_severity_2=0,
        actor_severity_3=0, actor_weighted_errors=0.0, reference_weighted_errors=0.0,
        weighted_hallucination=0.0, weighted_omission=0.0, relative_denominator=0.0,
        actor_errors_by_type=TypeCounts(), actor_words=0, reference_words=0, actor_hedges=0,
        judge_attempts=0,
    )


@lru_cache(maxsize=256)
def _hedge_pattern(hedge: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(hedge.lower())}\b")


def count_hedges(text: str, hedges: list[str]) -> int:
    """Occurrences of each hedging phrase as whole words (linear: one literal scan per phrase).

    >>> count_hedges("Possibly a dog, or possibly a fox.", ["possibly", "or possibly"])
    3
    """
    lowered = text.lower()
    return sum(len(_hedge_pattern(h).findall(lowered)) for h in hedges)


def _error_fields(
    erred: bool, error: ErrorLabel | None, mapper: TypeMapper, config: ClaimdiffConfig
) -> tuple[str | None, str | None, CanonicalType | None, int | None, SeveritySource | None]:
    """Type, detail, canonical type, severity and its source for one side of a difference.

    A side that erred without an error label still gets a canonical type (`other`) and a rule
    severity, so it is counted and weighted like any other error.
    """
    if not erred:
        return None, None, None, None, None
    error_type = error.type if error else None
    severity, source = severity_of(error_type, error.severity if error else None, config.severity)
    return (error_type, error.detail if error else None, mapper.canonical(error_type), severity,
            source)


def derive(
    row: InputRow,
    output: JudgeOutput,
    provenance: Provenance,
    config: ClaimdiffConfig,
    mapper: TypeMapper,
    first_judgments: Sequence[Judgment] | None = None,
    verify_disagreements: int = 0,
) -> tuple[list[DifferenceRow], RewardStats]:
    """Difference rows (outcome, types, severities) and the statistics of one judged row.

    `first_judgments` (two-pass mode) are the first pass's judgments, kept for audit.
    """
    weights = config.severity.weights
    rows: list[DifferenceRow] = []
    outcome_counts: Counter[Outcome] = Counter()
    severity_counts: Counter[int] = Counter()
    type_counts: Counter[str] = Counter()
    actor_weighted = reference_weighted = hallucination = omission = denominator = 0.0

    for index, difference in enumerate(output.differences):
        kind = difference_kind(difference.actor_claim, difference.reference_claim)
        outcomes = outcomes_of(kind, difference.judgment)
        a_erred, r_erred = actor_erred(outcomes), reference_erred(outcomes)
        a_type, a_detail, a_canon, a_sev, a_src = _error_fields(
            a_erred, difference.actor_error, mapper, config)
        r_type, r_detail, r_canon, r_sev, r_src = _error_fields(
            r_erred, difference.reference_error, mapper, config)
        outcome_counts.update(outcomes)

        a_weight = weights[a_sev] if a_sev is not None else 0.0
        r_weight = weights[r_sev] if r_sev is not None else 0.0
        if not any(o in (Outcome.SPURIOUS, Outcome.UNVERIFIABLE) for o in outcomes):
            denominator += max(a_weight, r_weight, 1.0)
        if a_sev is not None and a_canon is not None:
            severity_counts[a_sev] += 1
            type_counts[a_canon.value] += 1
            actor_weighted += a_weight
            if Outcome.ACTOR_HALLUCINATION in outcomes:
                hallucination += a_weight
            else:
                omission += a_weight
        reference_weighted += r_weight

        rows.append(DifferenceRow(
            run_id=provenance.run_id, sample_id=row.sample_id, actor_id=row.actor_id,
            manifest=row.manifest, row_index=row.row_index, difference_index=index,
            aspect=difference.aspect, kind=kind,
            actor_claim=difference.actor_claim, reference_claim=difference.reference_claim,
            actor_span=difference.actor_span, reference_span=difference.reference_span,
            judgment=difference.judgment,
            first_judgment=first_judgments[index] if first_judgments is not None else None,
            confidence=difference.confidence,
            outcomes=list(outcomes), actor_erred=a_erred, reference_erred=r_erred,
            actor_error_type=a_type, actor_error_detail=a_detail, actor_canonical_type=a_canon,
            actor_severity=a_sev, actor_severity_source=a_src,
            reference_error_type=r_type, reference_error_detail=r_detail,
            reference_canonical_type=r_canon, reference_severity=r_sev,
            reference_severity_source=r_src, image_sha256=provenance.image_sha256,
            judge_model=provenance.judge_model, prompt_version=provenance.prompt_version,
            decoding=provenance.decoding, cache_key=provenance.cache_key,
        ))

    n_noise = outcome_counts[Outcome.SPURIOUS] + outcome_counts[Outcome.UNVERIFIABLE]
    stats = RewardStats(
        n_differences=len(output.differences) - n_noise,
        n_actor_hallucination=outcome_counts[Outcome.ACTOR_HALLUCINATION],
        n_actor_omission=outcome_counts[Outcome.ACTOR_OMISSION],
        n_actor_extra_correct=outcome_counts[Outcome.ACTOR_EXTRA_CORRECT],
        n_reference_hallucination=outcome_counts[Outcome.REFERENCE_HALLUCINATION],
        n_reference_error=outcome_counts[Outcome.REFERENCE_ERROR],
        n_spurious=outcome_counts[Outcome.SPURIOUS],
        n_unverifiable=outcome_counts[Outcome.UNVERIFIABLE],
        actor_errors=outcome_counts[Outcome.ACTOR_HALLUCINATION]
        + outcome_counts[Outcome.ACTOR_OMISSION],
        reference_errors=outcome_counts[Outcome.REFERENCE_HALLUCINATION]
        + outcome_counts[Outcome.REFERENCE_ERROR],
        actor_severity_1=severity_counts[1],
        actor_severity_2=severity_counts[2],
        actor_severity_3=severity_counts[3],
        actor_weighted_errors=actor_weighted,
        reference_weighted_errors=reference_weighted,
        weighted_hallucination=hallucination,
        weighted_omission=omission,
        relative_denominator=denominator,
        actor_errors_by_type=TypeCounts(**type_counts),
        actor_words=len(row.caption.split()),
        reference_words=len(row.reference.split()),
        actor_hedges=count_hedges(row.caption, config.rewards.hedges),
        judge_attempts=provenance.attempts,
        verify_disagreements=verify_disagreements,
    )
    return rows, stats
