"""What a quality report says: the outcome, each expectation's result, the exit code."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from claimdiff import exit_codes
from claimdiff.quality.expectations import Skipped

REPORT_VERSION = 1


class ReportOutcome(StrEnum):
    PASS = "pass"
    BREACHED = "breached"
    UNREADABLE = "unreadable"


EXIT_PASS, EXIT_BREACHED = exit_codes.OK, exit_codes.BREACHED
EXIT_UNREADABLE = exit_codes.UNREADABLE
EXIT_CODES = {ReportOutcome.PASS: EXIT_PASS, ReportOutcome.BREACHED: EXIT_BREACHED,
              ReportOutcome.UNREADABLE: EXIT_UNREADABLE}


class ExpectationResult(BaseModel):
    id: str
    family: str
    table: str
    type: str
    description: str
    threshold: str | None
    success: bool
    observed: str
    unexpected: list[Any] = Field(default_factory=list)
    error: str | None = None
    data_docs: str | None = Field(default=None,
                                  description="its Data Docs page, relative to the report folder")


class QualityResult(BaseModel):
    """What `claimdiff report --json` prints and `report/report.json` holds."""

    report_version: int = REPORT_VERSION
    outcome: ReportOutcome
    exit_code: int
    run: str
    run_id: str | None = None
    error: str | None = Field(default=None, description="why the run is unreadable")
    created_at: str | None = None
    run_summary: dict[str, Any] = Field(default_factory=dict)
    suite: dict[str, Any] = Field(default_factory=dict)
    passed: int = 0
    failed: list[str] = Field(default_factory=list, description="ids of breached expectations")
    expectations: list[ExpectationResult] = Field(default_factory=list)
    not_computed: list[Skipped] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    baseline: str | None = None
    drift: dict[str, Any] | None = None
    report: str | None = Field(default=None, description="index.html, where it was written")
