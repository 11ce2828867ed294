"""The evaluation report: pydantic models (JSON), a plain-text rendering, and writing both.

Every ratio whose denominator is zero is `None` ("n/a" in the table), never 0 or 1: an empty
class is neither perfectly nor badly detected, and a made-up number would hide that.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Detection(BaseModel):
    """Precision, recall and F1 of one kind of error over matched differences."""

    true_positives: int = Field(description="matched pairs positive on both sides")
    predicted: int = Field(description="predicted differences that are positive")
    gold: int = Field(description="gold differences that are positive")
    precision: float | None = Field(description="true_positives / predicted")
    recall: float | None = Field(description="true_positives / gold")
    f1: float | None = Field(
        description="2 TP / (predicted + gold), i.e. 2PR / (P + R) where both exist; 0 when "
        "nothing matched but either side has positives, None only when neither has any")


class ErrorDetection(BaseModel):
    overall: Detection = Field(description="a matched pair counts whatever the two types say")
    by_type: dict[str, Detection] = Field(
        description="per canonical type, a matched pair counts only when both types agree; only "
        "types present on either side are listed")


class ConfusionMatrix(BaseModel):
    """Gold outcome (rows) x predicted outcome (columns) of matched differences.

    A gold difference with no match lands in the `unmatched` column, a predicted one with no
    match in the `unmatched` row. A both-wrong conflict has the joint label
    `actor_hallucination+reference_error`.
    """

    labels: list[str]
    counts: dict[str, dict[str, int]] = Field(description="gold label -> predicted label -> n")


class SeverityAgreement(BaseModel):
    """One side's severities on matched pairs where both rows say that side erred."""

    pairs: int
    exact_agreement: float | None
    quadratic_kappa: float | None = Field(
        description="quadratic-weighted Cohen's kappa over severities 1-3; 1.0 when there is "
        "no disagreement at all, None without pairs")
    counts: dict[str, dict[str, int]] = Field(description="gold severity -> predicted -> n")


class NoiseRates(BaseModel):
    predicted_differences: int
    gold_differences: int
    predicted_spurious_rate: float | None
    predicted_unverifiable_rate: float | None
    gold_spurious_rate: float | None
    gold_unverifiable_rate: float | None
    predicted_unmatched_rate: float | None = Field(
        description="predicted differences no gold difference matches")
    gold_unmatched_rate: float | None = Field(
        description="gold differences no predicted difference matches")


class PolicyBalance(BaseModel):
    """Per-caption hallucination and missing-fact rates of one policy, gold and predicted."""

    policy: str
    captions: int
    gold_hallucinations_per_caption: float
    predicted_hallucinations_per_caption: float
    gold_omissions_per_caption: float
    predicted_omissions_per_caption: float


class OrderingCounts(BaseModel):
    """Cleaner-vs-edited pairs of one preset: the cleaner caption's reward strictly higher?

    Pair counts say how often a preset orders two captions right; sample counts say for how many
    images (samples) it orders every caption right, the issue's "share of images".
    """

    pairs: int = Field(description="pairs compared (both rewards present)")
    correct: int = Field(description="cleaner caption rewarded strictly higher")
    ties: int
    inverted: int
    excluded: int = Field(description="pairs left out: a reward is null or missing")
    share_correct: float | None = Field(description="correct / pairs")
    share_ties: float | None = Field(description="ties / pairs")
    samples: int = Field(description="samples with at least one compared pair")
    samples_passed: int = Field(
        description="samples whose compared pairs are all correct (a tie fails)")
    sample_pass_rate: float | None = Field(description="samples_passed / samples")


class PresetOrdering(BaseModel):
    name: str
    kind: str
    version: int
    overall: OrderingCounts
    by_edit: dict[str, OrderingCounts]
    by_severity: dict[str, OrderingCounts] = Field(
        description="max gold actor severity of the edited caption")


class RewardOrdering(BaseModel):
    edit_source: str
    samples: int = Field(description="samples (images) with at least one gold pair")
    gold_pairs: int = Field(description="cleaner-vs-edited pairs by the gold labels")
    rows_null_reward: int = Field(description="rows in gold pairs whose run row failed")
    rows_missing_from_run: int = Field(description="rows in gold pairs the run has no row for")
    presets: list[PresetOrdering]


class JoinSummary(BaseModel):
    """Where every gold and run row went; see `join.py` for the rules."""

    gold_rows: int = Field(description="rows read from the gold manifest(s)")
    gold_invalid_rows: int = Field(description="unparsable or invalid manifest rows")
    gold_unlabelled: int = Field(description="valid rows without a `gold` value")
    gold_label_errors: int = Field(description="`gold` values that are not a valid JudgeOutput")
    gold_items: int = Field(description="rows with usable gold labels")
    run_rows: int = Field(description="rows of the run's rewards/")
    joined_judged: int = Field(description="joined pairs whose run row is ok: the scored set")
    joined_failed: int = Field(description="joined pairs whose run row failed (null reward)")
    gold_only: int = Field(description="gold items with no run row")
    run_only: int = Field(description="run rows with no usable gold item")
    ambiguous_gold: int = Field(description="gold items left out: duplicate key, no tie-break")
    ambiguous_run: int = Field(description="run rows left out: duplicate key, no tie-break")
    orphan_differences: int = Field(description="run differences with no rewards row")
    problems: list[str] = Field(description="the first gold and join problems, for debugging")


class SwapConsistency(BaseModel):
    """Position-swap consistency over the scored rows the run judged in both positions."""

    rows: int
    difference_consistency: float | None = Field(
        description="2 * matched / (original + swapped differences): same differences found; "
        "None when neither position found any")
    judgment_consistency: float | None = Field(
        description="matched differences whose mirrored judgment agrees / matched")


class EvaluationReport(BaseModel):
    run_output: str
    gold_manifest: str
    config_source: str = Field(description="argument | run.json | default")
    matcher: str
    threshold: float
    join: JoinSummary
    actor_hallucination: ErrorDetection
    actor_omission: ErrorDetection
    reference_error: ErrorDetection
    outcome_confusion: ConfusionMatrix
    severity: SeverityAgreement = Field(description="on matched actor errors")
    reference_severity: SeverityAgreement = Field(description="on matched reference errors")
    noise: NoiseRates
    policy_column: str = Field(description="actor_id or the metadata column grouped by")
    policies: list[PolicyBalance]
    reward_ordering: RewardOrdering
    swap_consistency: SwapConsistency | None = Field(
        default=None, description="where the run judged rows with the roles swapped too")
    not_computed: dict[str, str] = Field(description="metrics left out, with the reason")


# ---- plain-text rendering ------------------------------------------------------------------

# Short column heads keep the confusion matrix inside 100 columns.
SHORT_LABELS = {
    "actor_hallucination": "a_hal",
    "actor_extra_correct": "a_ext",
    "actor_omission": "a_omi",
    "reference_hallucination": "r_hal",
    "reference_error": "r_err",
    "actor_hallucination+reference_error": "a_hal+r_err",
    "spurious": "spur",
    "unverifiable": "unver",
    "unmatched": "unmatched",
}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _detection_rows(name: str, detection: ErrorDetection) -> list[list[str]]:
    def cells(label: str, d: Detection) -> list[str]:
        return [label, str(d.true_positives), str(d.predicted), str(d.gold), _num(d.precision),
                _num(d.recall), _num(d.f1)]

    rows = [cells(name, detection.overall)]
    rows.extend(cells(f"  {t}", d) for t, d in detection.by_type.items())
    return rows


def _ordering_rows(preset: PresetOrdering) -> list[list[str]]:
    def cells(label: str, c: OrderingCounts) -> list[str]:
        return [label, str(c.pairs), str(c.correct), str(c.ties), str(c.inverted),
                str(c.excluded), _num(c.share_correct), str(c.samples), str(c.samples_passed),
                _num(c.sample_pass_rate)]

    rows = [cells(f"{preset.name} ({preset.kind} v{preset.version})", preset.overall)]
    rows.extend(cells(f"  edit {k}", c) for k, c in preset.by_edit.items())
    rows.extend(cells(f"  severity {k}", c) for k, c in preset.by_severity.items())
    return rows


def render_table(report: EvaluationReport) -> str:
    """The report as plain-text tables, for a terminal or a log."""
    j = report.join
    out = [
        f"claimdiff eval: {report.run_output} against {report.gold_manifest}",
        f"matcher: {report.matcher}, threshold {report.threshold:g}; config from "
        f"{report.config_source}",
        f"join: {j.joined_judged} scored, {j.joined_failed} failed in the run, {j.gold_only} "
        f"gold only, {j.run_only} run only, {j.ambiguous_gold}/{j.ambiguous_run} ambiguous "
        f"(gold/run); gold rows {j.gold_rows}: {j.gold_items} labelled, {j.gold_unlabelled} "
        f"unlabelled, {j.gold_label_errors} bad labels, {j.gold_invalid_rows} invalid",
        "",
        "Detection (matched differences)",
    ]
    detection_rows = [
        *_detection_rows("actor_hallucination", report.actor_hallucination),
        *_detection_rows("actor_omission", report.actor_omission),
        *_detection_rows("reference_error", report.reference_error),
    ]
    out += _table(["", "tp", "pred", "gold", "precision", "recall", "f1"], detection_rows)

    labels = report.outcome_confusion.labels
    out += ["", "Outcome confusion (rows: gold, columns: predicted)"]
    out += _table(
        ["gold \\ predicted", *(SHORT_LABELS.get(x, x) for x in labels)],
        [[SHORT_LABELS.get(g, g), *(str(report.outcome_confusion.counts[g][p]) for p in labels)]
         for g in labels])

    out.append("")
    for side, s in (("actor", report.severity), ("reference", report.reference_severity)):
        out.append(f"Severity agreement on matched {side} errors: {s.pairs} pairs, exact "
                   f"{_num(s.exact_agreement)}, quadratic-weighted kappa "
                   f"{_num(s.quadratic_kappa)}")
    n = report.noise
    out += [
        "",
        f"Noise: predicted {n.predicted_differences} differences, spurious "
        f"{_num(n.predicted_spurious_rate)}, unverifiable {_num(n.predicted_unverifiable_rate)}, "
        f"unmatched {_num(n.predicted_unmatched_rate)}",
        f"       gold {n.gold_differences} differences, spurious {_num(n.gold_spurious_rate)}, "
        f"unverifiable {_num(n.gold_unverifiable_rate)}, unmatched (missed) "
        f"{_num(n.gold_unmatched_rate)}",
        "",
        f"Per-policy errors per caption (policy: {report.policy_column})",
    ]
    out += _table(
        ["policy", "captions", "hal gold", "hal pred", "omi gold", "omi pred"],
        [[p.policy, str(p.captions), _num(p.gold_hallucinations_per_caption),
          _num(p.predicted_hallucinations_per_caption), _num(p.gold_omissions_per_caption),
          _num(p.predicted_omissions_per_caption)] for p in report.policies])

    o = report.reward_ordering
    out += ["", f"Reward ordering: cleaner caption above each edited one ({o.gold_pairs} gold "
            f"pairs over {o.samples} samples; rows with null rewards: {o.rows_null_reward}, "
            f"missing from the run: {o.rows_missing_from_run}; edit: {o.edit_source})",
            "share: correct / pairs; samples passed: every pair of the sample correct"]
    if o.presets:
        out += _table(["preset", "pairs", "correct", "ties", "inverted", "excluded", "share",
                       "samples", "passed", "pass rate"],
                      [row for preset in o.presets for row in _ordering_rows(preset)])
    else:
        out.append("(no rewards in the run)")
    if report.swap_consistency is not None:
        swap = report.swap_consistency
        out += ["", f"Position-swap consistency over {swap.rows} rows: differences "
                f"{_num(swap.difference_consistency)}, judgments "
                f"{_num(swap.judgment_consistency)}"]
    for name, reason in report.not_computed.items():
        out.append(f"not computed: {name}: {reason}")
    return "\n".join(out) + "\n"


def write_report(report: EvaluationReport, path: str) -> None:
    """Write the report to a local path or fsspec URL: `.txt` gets the table, else JSON."""
    import fsspec

    text = (render_table(report) if path.lower().endswith(".txt")
            else report.model_dump_json(indent=2) + "\n")
    with fsspec.open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
