"""Reading a run's outputs back for people and schedulers: summaries and quality reports.

    from claimdiff.quality import assess, build_report, load_quality_config
    result = build_report("out/run1", baseline="out/run0",
                          config=load_quality_config("quality.yaml"))
    result.outcome, result.exit_code, result.failed

Modules: `summary` (`claimdiff show`), `config` (thresholds, drift, suite extensions),
`expectations` (the suite, built from the row models), `frames` (the run as tables), `drift`,
`validate` (Great Expectations), `datadocs` (Data Docs offline), `plots`, `html`, `report`.
Great Expectations and matplotlib are imported only when a report is made.
"""

from claimdiff.quality.config import QualityConfig, load_quality_config, parse_quality_config
from claimdiff.quality.report import assess, build_report
from claimdiff.quality.results import (
    EXIT_BREACHED,
    EXIT_PASS,
    EXIT_UNREADABLE,
    QualityResult,
    ReportOutcome,
)

__all__ = [
    "EXIT_BREACHED",
    "EXIT_PASS",
    "EXIT_UNREADABLE",
    "QualityConfig",
    "QualityResult",
    "ReportOutcome",
    "assess",
    "build_report",
    "load_quality_config",
    "parse_quality_config",
]
