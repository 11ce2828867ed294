"""Metrics over aligned (predicted, gold) differences; each returns a report model.

Inputs are `Alignment`s of judged rows only: a row the run failed on has no prediction to
score (it is counted in the join summary and the ordering checks instead).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

from claimdiff.evaluation.report import (
    ConfusionMatrix,
    Detection,
    ErrorDetection,
    NoiseRates,
    PolicyBalance,
    SeverityAgreement,
)
from claimdiff.matching import Alignment
from claimdiff.schemas.rows import CanonicalType, DifferenceRow, Outcome

UNMATCHED = "unmatched"
BOTH_WRONG = f"{Outcome.ACTOR_HALLUCINATION.value}+{Outcome.REFERENCE_ERROR.value}"
OUTCOME_LABELS = (
    Outcome.ACTOR_HALLUCINATION.value,
    Outcome.ACTOR_EXTRA_CORRECT.value,
    Outcome.ACTOR_OMISSION.value,
    Outcome.REFERENCE_HALLUCINATION.value,
    Outcome.REFERENCE_ERROR.value,
    BOTH_WRONG,
    Outcome.SPURIOUS.value,
    Outcome.UNVERIFIABLE.value,
    UNMATCHED,
)
SEVERITIES = (1, 2, 3)

Positive = Callable[[DifferenceRow], bool]
TypeOf = Callable[[DifferenceRow], CanonicalType | None]


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def prf(true_positives: int, predicted: int, gold: int) -> Detection:
    """Precision, recall, F1 from counts; a ratio over zero is None.

    F1 is 2 TP / (predicted + gold), the harmonic mean of precision and recall where both exist.
    Its denominator is zero only when neither side has a positive: a judge that finds nothing
    where gold has errors (or flags errors gold does not have) scores F1 = 0, not "n/a".

    >>> prf(1, 2, 1).f1
    0.6666666666666666
    >>> prf(0, 0, 3).f1, prf(0, 0, 3).precision, prf(0, 0, 0).f1
    (0.0, None, None)
    """
    return Detection(true_positives=true_positives, predicted=predicted, gold=gold,
                     precision=ratio(true_positives, predicted),
                     recall=ratio(true_positives, gold),
                     f1=ratio(2 * true_positives, predicted + gold))


def is_hallucination(row: DifferenceRow) -> bool:
    return Outcome.ACTOR_HALLUCINATION in row.outcomes


def is_omission(row: DifferenceRow) -> bool:
    return Outcome.ACTOR_OMISSION in row.outcomes


def is_reference_error(row: DifferenceRow) -> bool:
    return row.reference_erred


def actor_type(row: DifferenceRow) -> CanonicalType | None:
    return row.actor_canonical_type


def reference_type(row: DifferenceRow) -> CanonicalType | None:
    return row.reference_canonical_type


def detection(alignments: Iterable[Alignment], positive: Positive, type_of: TypeOf
              ) -> ErrorDetection:
    """P/R/F1 of one error class, overall and per canonical type.

    Overall: TP = matched pairs positive on both sides; predicted / gold = positive rows on that
    side (matched or not). Per type T: the same counts restricted to rows of type T, and a TP
    needs both rows to be of type T (a hallucination found but mistyped is a TP overall only).
    """
    tp = n_pred = n_gold = 0
    tp_t: Counter[CanonicalType | None] = Counter()
    pred_t: Counter[CanonicalType | None] = Counter()
    gold_t: Counter[CanonicalType | None] = Counter()
    for a in alignments:
        for row in a.predicted:
            if positive(row):
                n_pred += 1
                pred_t[type_of(row)] += 1
        for row in a.gold:
            if positive(row):
                n_gold += 1
                gold_t[type_of(row)] += 1
        for m in a.matches:
            p, g = a.predicted[m.predicted], a.gold[m.gold]
            if positive(p) and positive(g):
                tp += 1
                if type_of(p) == type_of(g):
                    tp_t[type_of(g)] += 1
    # an erred side always has a canonical type (derive gives `other`); None is defensive only
    by_type = {
        (t.value if t is not None else "none"): prf(tp_t[t], pred_t[t], gold_t[t])
        for t in [*CanonicalType, None] if pred_t[t] or gold_t[t]
    }
    return ErrorDetection(overall=prf(tp, n_pred, n_gold), by_type=by_type)


def outcome_label(row: DifferenceRow) -> str:
    return "+".join(o.value for o in row.outcomes)


def confusion(alignments: Iterable[Alignment]) -> ConfusionMatrix:
    """Gold outcome x predicted outcome, with unmatched rows on the `unmatched` row/column."""
    counts = {g: dict.fromkeys(OUTCOME_LABELS, 0) for g in OUTCOME_LABELS}

    def add(gold: str, predicted: str) -> None:
        # a label outside the table (a future outcome) gets its own row/column, not dropped
        for label in (gold, predicted):
            if label not in counts:
                for row in counts.values():
                    row[label] = 0
                counts[label] = dict.fromkeys(next(iter(counts.values())), 0)
        counts[gold][predicted] += 1

    for a in alignments:
        for m in a.matches:
            add(outcome_label(a.gold[m.gold]), outcome_label(a.predicted[m.predicted]))
        for i in a.unmatched_gold():
            add(outcome_label(a.gold[i]), UNMATCHED)
        for i in a.unmatched_predicted():
            add(UNMATCHED, outcome_label(a.predicted[i]))
    return ConfusionMatrix(labels=list(counts), counts=counts)


def quadratic_kappa(pairs: Sequence[tuple[int, int]],
                    categories: Sequence[int] = SEVERITIES) -> float | None:
    """Cohen's kappa with quadratic weights w_ij = (i - j)^2 / (k - 1)^2.

    kappa = 1 - sum(w * observed) / sum(w * expected), with expected from the two marginals.
    No pairs: None. No observed disagreement: 1.0 (sklearn returns nan when both raters use a
    single category; perfect agreement is the useful reading for a report).

    >>> quadratic_kappa([(2, 3), (3, 3), (2, 2), (2, 2)])
    0.5
    """
    if not pairs:
        return None
    index = {c: i for i, c in enumerate(categories)}
    k, n = len(categories), len(pairs)
    scale = (k - 1) ** 2 or 1
    observed = sum((index[g] - index[p]) ** 2 for g, p in pairs) / scale / n
    if observed == 0:
        return 1.0
    gold_m = Counter(g for g, _ in pairs)
    pred_m = Counter(p for _, p in pairs)
    expected = sum(
        gold_m[g] * pred_m[p] * (index[g] - index[p]) ** 2
        for g in categories for p in categories) / scale / (n * n)
    return 1.0 - observed / expected


def actor_severity(row: DifferenceRow) -> int | None:
    return row.actor_severity


def reference_severity(row: DifferenceRow) -> int | None:
    return row.reference_severity


def severity_agreement(alignments: Iterable[Alignment],
                       severity_of: Callable[[DifferenceRow], int | None] = actor_severity
                       ) -> SeverityAgreement:
    """Severities of one side on matched pairs where both rows say that side erred.

    A row has a side's severity exactly when that side erred (`derive`), so `actor_severity`
    scores matched actor errors and `reference_severity` matched reference errors.
    """
    pairs = [
        (gold, predicted)
        for a in alignments for m in a.matches
        for predicted, gold in [(severity_of(a.predicted[m.predicted]),
                                 severity_of(a.gold[m.gold]))]
        if predicted is not None and gold is not None
    ]
    counts = {str(g): {str(p): 0 for p in SEVERITIES} for g in SEVERITIES}
    for g, p in pairs:
        counts[str(g)][str(p)] += 1
    exact = ratio(sum(1 for g, p in pairs if g == p), len(pairs))
    return SeverityAgreement(pairs=len(pairs), exact_agreement=exact,
                             quadratic_kappa=quadratic_kappa(pairs), counts=counts)


def noise_rates(alignments: Sequence[Alignment]) -> NoiseRates:
    """Shares of spurious / unverifiable / unmatched among all differences of each side."""
    def share(rows: list[DifferenceRow], outcome: Outcome) -> float | None:
        return ratio(sum(1 for r in rows if outcome in r.outcomes), len(rows))

    predicted = [r for a in alignments for r in a.predicted]
    gold = [r for a in alignments for r in a.gold]
    return NoiseRates(
        predicted_differences=len(predicted),
        gold_differences=len(gold),
        predicted_spurious_rate=share(predicted, Outcome.SPURIOUS),
        predicted_unverifiable_rate=share(predicted, Outcome.UNVERIFIABLE),
        gold_spurious_rate=share(gold, Outcome.SPURIOUS),
        gold_unverifiable_rate=share(gold, Outcome.UNVERIFIABLE),
        predicted_unmatched_rate=ratio(
            sum(len(a.unmatched_predicted()) for a in alignments), len(predicted)),
        gold_unmatched_rate=ratio(sum(len(a.unmatched_gold()) for a in alignments), len(gold)),
    )


def policy_balance(rows: Iterable[tuple[str, Alignment]]) -> list[PolicyBalance]:
    """Per policy: actor hallucinations and omissions per judged caption, gold and predicted.

    Both sides are averaged over the same captions (joined, judged rows), so the two columns
    compare like with like; policies are listed in name order.
    """
    groups: dict[str, list[Alignment]] = defaultdict(list)
    for policy, alignment in rows:
        groups[policy].append(alignment)

    def per_caption(alignments: list[Alignment], side: str, positive: Positive) -> float:
        total = sum(1 for a in alignments for r in getattr(a, side) if positive(r))
        return total / len(alignments)

    return [
        PolicyBalance(
            policy=policy, captions=len(group),
            gold_hallucinations_per_caption=per_caption(group, "gold", is_hallucination),
            predicted_hallucinations_per_caption=per_caption(group, "predicted", is_hallucination),
            gold_omissions_per_caption=per_caption(group, "gold", is_omission),
            predicted_omissions_per_caption=per_caption(group, "predicted", is_omission),
        )
        for policy, group in sorted(groups.items())
    ]
