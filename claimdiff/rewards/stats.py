"""From one judge output to difference rows, and from difference rows to row statistics.

Two steps, so that `claimdiff rewards` can redo the second (and re-derive types and severities
under another configuration) from `differences/` alone, with the very same code as judge time:

1. `difference_rows`: one `DifferenceRow` per judged difference, with its outcomes (the table in
   `rewards.outcomes`), the error fields of each side that erred by those outcomes (canonical
   type, severity and its source) and, whatever the outcomes, the judge's own labels.
2. `row_stats`: the per (sample, actor) `RewardStats`, in two countings:
   - **outcomes** (the flat fields): errors follow from which claims exist and the judgment;
     spurious and unverifiable differences are not real differences.
   - **labels** (`stats.labels`, the released ClaimDiff-RL code's counting): a side errs where
     the judge labelled an error type that is not none; every block is a difference; a labelled
     actor error is a hallucination where the actor claims something, an omission where only the
     reference does. In two-pass mode labels count the first pass, as the judge wrote it.
   Severities and weights follow `severity` in both.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from claimdiff.config import AmbiguityConfig, ClaimdiffConfig, SeverityConfig
from claimdiff.judges.formats.answer_tags import answer_text, has_think_and_answer
from claimdiff.rewards.outcomes import (
    actor_erred,
    difference_kind,
    outcomes_of,
    reference_erred,
)
from claimdiff.rewards.taxonomy import TypeMapper, severity_of
from claimdiff.schemas.baselines import HallVsMissOutput
from claimdiff.schemas.judge import ErrorLabel, JudgeOutput, Judgment
from claimdiff.schemas.rows import (
    CanonicalType,
    Counts,
    DecodingParams,
    DifferenceKind,
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


@functools.lru_cache(maxsize=8)
def _ambiguity_pattern(words: tuple[str, ...], slash_pairs: bool) -> re.Pattern[str]:
    # Same matches as the released `\b(or|and/or|...)\b|\w+/\w+`: a `word/word` match always
    # starts a run of word characters (findall resumes at a word boundary), so the lookbehind
    # changes nothing but keeps the search linear: without it, every position inside a long
    # run of word characters would rescan the run looking for a slash.
    parts = []
    if words:
        parts.append(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b")
    if slash_pairs:
        parts.append(r"(?<!\w)\w+/\w+")
    return re.compile("|".join(parts) or r"(?!)", re.IGNORECASE)


def count_ambiguity(text: str, config: AmbiguityConfig) -> int:
    """Ambiguity tokens of a caption, as the released code counts them.

    >>> count_ambiguity("A red or orange car, possibly a taxi/cab.", AmbiguityConfig())
    3
    """
    return len(_ambiguity_pattern(tuple(config.words), config.slash_pairs).findall(text))


@dataclass(frozen=True)
class _Side:
    """The derived error fields of one side of one difference."""

    error_type: str | None = None
    detail: str | None = None
    canonical: CanonicalType | None = None
    severity: int | None = None
    source: SeveritySource | None = None


def _side(erred: bool, label: ErrorLabel | None, mapper: TypeMapper,
          severity: SeverityConfig) -> _Side:
    """A side that erred without an error label still gets a canonical type (`other`) and a
    rule severity, so it is counted and weighted like any other error."""
    if not erred:
        return _Side()
    error_type = label.type if label else None
    level, source = severity_of(error_type, label.severity if label else None, severity)
    return _Side(error_type, label.detail if label else None, mapper.canonical(error_type),
                 level, source)


def actor_label(row: DifferenceRow) -> ErrorLabel | None:
    """The judge's own label of the actor's side, from the row's label fields."""
    if row.actor_label_type is None:
        return None
    return ErrorLabel(type=row.actor_label_type, detail=row.actor_label_detail or "",
                      severity=row.actor_label_severity,  # type: ignore[arg-type]
                      severity_raw=row.actor_label_severity_raw)


def reference_label(row: DifferenceRow) -> ErrorLabel | None:
    """The judge's own label of the reference's side."""
    if row.reference_label_type is None:
        return None
    return ErrorLabel(type=row.reference_label_type, detail=row.reference_label_detail or "",
                      severity=row.reference_label_severity,  # type: ignore[arg-type]
                      severity_raw=row.reference_label_severity_raw)


def with_derived_fields(row: DifferenceRow, config: ClaimdiffConfig,
                        mapper: TypeMapper) -> DifferenceRow:
    """The row with its outcomes and error fields derived from its claims, judgment and labels
    under `config`: what `difference_rows` writes, and what `claimdiff rewards` redoes."""
    outcomes = outcomes_of(row.kind, row.judgment)
    a_erred, r_erred = actor_erred(outcomes), reference_erred(outcomes)
    actor = _side(a_erred, actor_label(row), mapper, config.severity)
    reference = _side(r_erred, reference_label(row), mapper, config.severity)
    return row.model_copy(update={
        "outcomes": list(outcomes), "actor_erred": a_erred, "reference_erred": r_erred,
        "actor_error_type": actor.error_type, "actor_error_detail": actor.detail,
        "actor_canonical_type": actor.canonical, "actor_severity": actor.severity,
        "actor_severity_source": actor.source,
        "reference_error_type": reference.error_type, "reference_error_detail": reference.detail,
        "reference_canonical_type": reference.canonical,
        "reference_severity": reference.severity, "reference_severity_source": reference.source,
    })


def _label_fields(side: str, label: ErrorLabel | None) -> dict[str, object]:
    if label is None:
        return {}
    return {f"{side}_label_type": label.type, f"{side}_label_detail": label.detail,
            f"{side}_label_severity": label.severity,
            f"{side}_label_severity_raw": label.severity_raw}


def difference_rows(
    row: InputRow,
    output: JudgeOutput,
    provenance: Provenance,
    config: ClaimdiffConfig,
    mapper: TypeMapper,
    first_judgments: Sequence[Judgment] | None = None,
    hall: HallVsMissOutput | None = None,
) -> list[DifferenceRow]:
    """One row per difference of `output` (`first_judgments`: the first pass's, in two-pass
    mode; `hall`: the same answer's own hall_vs_miss records, one per difference)."""
    if hall is not None and len(hall.differences) != len(output.differences):
        raise ValueError("the hall_vs_miss records do not match the differences one to one")
    rows = []
    for index, difference in enumerate(output.differences):
        hall_fields: dict[str, object] = {}
        if hall is not None:
            block = hall.differences[index]
            hall_fields = {
                "hall_type": block.type.value, "hall_verification": block.verification.value,
                "hall_category": block.category.value if block.category else None,
                "hall_is_hallucination": block.is_hallucination}
        draft = DifferenceRow(
            run_id=provenance.run_id, sample_id=row.sample_id, actor_id=row.actor_id,
            manifest=row.manifest, row_index=row.row_index, difference_index=index,
            aspect=difference.aspect,
            kind=difference_kind(difference.actor_claim, difference.reference_claim),
            actor_claim=difference.actor_claim, reference_claim=difference.reference_claim,
            actor_span=difference.actor_span, reference_span=difference.reference_span,
            judgment=difference.judgment,
            first_judgment=first_judgments[index] if first_judgments is not None else None,
            confidence=difference.confidence, outcomes=[], actor_erred=False,
            reference_erred=False, actor_error_type=None, actor_error_detail=None,
            actor_canonical_type=None, actor_severity=None, actor_severity_source=None,
            reference_error_type=None, reference_error_detail=None,
            reference_canonical_type=None, reference_severity=None,
            reference_severity_source=None, image_sha256=provenance.image_sha256,
            judge_model=provenance.judge_model, prompt_version=provenance.prompt_version,
            decoding=provenance.decoding, cache_key=provenance.cache_key, labels_recorded=True,
        ).model_copy(update={**_label_fields("actor", difference.actor_error),
                             **_label_fields("reference", difference.reference_error),
                             **hall_fields})
        rows.append(with_derived_fields(draft, config, mapper))
    return rows


def _weight(severity: int | None, config: SeverityConfig) -> float:
    return config.weights[severity] if severity is not None else 0.0


def label_counts(rows: Sequence[DifferenceRow], config: SeverityConfig) -> Counts:
    """The `labels` counting of one row's differences (module docstring)."""
    actor = reference = hallucinations = omissions = extra = judged_a = judged_r = 0
    actor_w = reference_w = hallucination_w = omission_w = differences_w = 0.0
    for row in rows:
        judgment = row.first_judgment if row.first_judgment is not None else row.judgment
        a_weight = r_weight = 0.0
        if row.actor_label_type is not None:
            actor += 1
            a_weight = config.weights[severity_of(
                row.actor_label_type, row.actor_label_severity, config)[0]]
            actor_w += a_weight
            if row.kind is DifferenceKind.REFERENCE_ONLY:
                omissions += 1
                omission_w += a_weight
            else:
                hallucinations += 1
                hallucination_w += a_weight
        elif row.kind is DifferenceKind.ACTOR_ONLY and judgment is Judgment.ACTOR:
            extra += 1
        if row.reference_label_type is not None:
            reference += 1
            r_weight = config.weights[severity_of(
                row.reference_label_type, row.reference_label_severity, config)[0]]
            reference_w += r_weight
        judged_a += judgment is Judgment.ACTOR
        judged_r += judgment is Judgment.REFERENCE
        differences_w += max(a_weight, r_weight, 1.0)
    return Counts(
        differences=len(rows), actor_errors=actor, reference_errors=reference,
        hallucinations=hallucinations, omissions=omissions, extra_correct=extra,
        judged_actor=judged_a, judged_reference=judged_r, actor_weighted=actor_w,
        reference_weighted=reference_w, weighted_hallucination=hallucination_w,
        weighted_omission=omission_w, weighted_differences=differences_w)


def row_stats(
    caption: str,
    reference: str,
    rows: Sequence[DifferenceRow],
    config: ClaimdiffConfig,
    *,
    overall: str | None,
    attempts: int,
    verify_disagreements: int = 0,
    holistic_score: int | None = None,
) -> RewardStats:
    """The statistics of one judged row from its difference rows (in difference order)."""
    weights = config.severity
    outcome_counts: Counter[Outcome] = Counter()
    severity_counts: Counter[int] = Counter()
    type_counts: Counter[str] = Counter()
    actor_weighted = reference_weighted = hallucination = omission = denominator = 0.0
    judged_actor = judged_reference = 0
    for row in rows:
        outcomes = tuple(row.outcomes)
        outcome_counts.update(outcomes)
        a_weight = _weight(row.actor_severity, weights)
        r_weight = _weight(row.reference_severity, weights)
        if not any(o in (Outcome.SPURIOUS, Outcome.UNVERIFIABLE) for o in outcomes):
            denominator += max(a_weight, r_weight, 1.0)
            judged_actor += row.judgment is Judgment.ACTOR
            judged_reference += row.judgment is Judgment.REFERENCE
        if row.actor_severity is not None and row.actor_canonical_type is not None:
            severity_counts[row.actor_severity] += 1
            type_counts[row.actor_canonical_type.value] += 1
            actor_weighted += a_weight
            if Outcome.ACTOR_HALLUCINATION in outcomes:
                hallucination += a_weight
            else:
                omission += a_weight
        reference_weighted += r_weight

    text = answer_text(caption)
    n_noise = outcome_counts[Outcome.SPURIOUS] + outcome_counts[Outcome.UNVERIFIABLE]
    return RewardStats(
        n_differences=len(rows) - n_noise,
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
        actor_words=len(text.split()),
        reference_words=len(reference.split()),
        actor_hedges=count_hedges(text, config.rewards.hedges),
        judge_attempts=attempts,
        verify_disagreements=verify_disagreements,
        judged_actor=judged_actor,
        judged_reference=judged_reference,
        overall=overall,
        actor_ambiguity=count_ambiguity(text, config.rewards.ambiguity),
        actor_think_and_answer=has_think_and_answer(caption),
        actor_answer_empty=not text,
        holistic_score=holistic_score,
        labels=label_counts(rows, config.severity),
    )


def derive(
    row: InputRow,
    output: JudgeOutput,
    provenance: Provenance,
    config: ClaimdiffConfig,
    mapper: TypeMapper,
    first_judgments: Sequence[Judgment] | None = None,
    verify_disagreements: int = 0,
    *,
    hall: HallVsMissOutput | None = None,
    holistic_score: int | None = None,
) -> tuple[list[DifferenceRow], RewardStats]:
    """Difference rows (outcome, types, severities, labels) and the statistics of one row."""
    rows = difference_rows(row, output, provenance, config, mapper, first_judgments, hall)
    stats = row_stats(row.caption, row.reference, rows, config,
                      overall=output.overall.value if output.overall is not None else None,
                      attempts=provenance.attempts, verify_disagreements=verify_disagreements,
                      holistic_score=holistic_score)
    return rows, stats
