"""Score a judge run against gold labels: detection, confusion, severity, noise, ordering.

    from claimdiff.evaluation import evaluate, render_table, write_report
    report = evaluate("out/run1", "data/manifest.jsonl")
    print(render_table(report))
    write_report(report, "out/run1/eval.json")

Modules: `load` (read the run and derive gold), `join` (gold x run rows), `matching` (difference
matcher), `metrics`, `ordering` (reward ordering checks), `report` (models and rendering),
`evaluate` (the whole).
"""

from claimdiff.evaluation.evaluate import evaluate
from claimdiff.evaluation.report import EvaluationReport, render_table, write_report
from claimdiff.matching import (
    DEFAULT_THRESHOLD,
    Alignment,
    EmbeddingScorer,
    Match,
    Scorer,
    align,
    lexical_score,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "Alignment",
    "EmbeddingScorer",
    "EvaluationReport",
    "Match",
    "Scorer",
    "align",
    "evaluate",
    "lexical_score",
    "render_table",
    "write_report",
]
