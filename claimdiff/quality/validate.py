"""Run the checks with Great Expectations: one ephemeral context, one suite per table, Data Docs.

Great Expectations is imported here only, lazily, with its usage statistics off (the
`GX_ANALYTICS_ENABLED` environment variable and the context's own `analytics_enabled`). The
context keeps everything in memory; Data Docs are built into a folder of the caller's choosing,
under a site name of claimdiff's own (GE's default `local_site` would collide with a user's).
"""

from __future__ import annotations

import copy
import hashlib
import html
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from claimdiff.errors import ConfigError, MissingExtraError
from claimdiff.quality.config import Where
from claimdiff.quality.expectations import SUITE_VERSION, Check, schema_sha256

if TYPE_CHECKING:
    import pandas as pd

SITE_NAME = "claimdiff_quality"
DATASOURCE = "claimdiff"
SUITE_PREFIX = "claimdiff."
# expectations that run SQL or need another backend: not for claimdiff's pandas tables
_REFUSED_TYPES = frozenset({"unexpected_rows_expectation",
                            "expect_query_results_to_match_comparison"})
_SAMPLE = 5


@dataclass
class CheckResult:
    """What Great Expectations found for one check."""

    check: Check
    success: bool
    observed: str
    unexpected: list[Any] = field(default_factory=list)
    error: str | None = None
    docs_page: str | None = None  # relative to the Data Docs folder


def _import_gx() -> Any:
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    try:
        import great_expectations as gx
    except ImportError as exc:
        raise MissingExtraError("great_expectations", "report") from exc
    return gx


def expectation_class(type_name: str) -> type | None:
    """The GE class of an expectation type (`expect_column_values_to_be_between`), or None.

    Looked up by name rather than by listing the module: listing imports every expectation,
    scipy-backed ones included (seconds).
    """
    gx = _import_gx()
    import great_expectations.expectations as gxe

    if type_name in _REFUSED_TYPES or not type_name.startswith("expect_"):
        return None
    cls = getattr(gxe, "".join(part.capitalize() for part in type_name.split("_")), None)
    if (isinstance(cls, type) and issubclass(cls, gx.expectations.Expectation)
            and getattr(cls, "expectation_type", "") == type_name):
        return cls
    return None


def _condition(where: Where) -> Any:
    from great_expectations.expectations.row_conditions import Column

    column = Column(where.column)
    operations: dict[str, Callable[[], Any]] = {
        "==": lambda: column == where.value, "!=": lambda: column != where.value,
        "<": lambda: column < where.value, "<=": lambda: column <= where.value,
        ">": lambda: column > where.value, ">=": lambda: column >= where.value,
        "in": lambda: column.is_in(where.value), "not_in": lambda: column.is_not_in(where.value),
        "is_null": column.is_null, "is_not_null": column.is_not_null,
    }
    return operations[where.op]()


def to_expectation(check: Check) -> Any:
    """The GE expectation of a check; a check GE cannot build is a configuration error."""
    cls = expectation_class(check.type)
    if cls is None:
        raise ConfigError(f"expectation {check.id}: unknown expectation type {check.type!r}")
    kwargs = dict(check.kwargs)
    if check.where is not None:
        kwargs["row_condition"] = _condition(check.where)
    try:
        # GE's own rendering (with the row condition) stays in Data Docs; ours goes in notes
        return cls(**kwargs, meta={"id": check.id, "family": check.family},
                   notes=f"{check.id}: {check.description}" if check.description else check.id)
    except (ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"expectation {check.id} ({check.type}): {message}") from exc


def _plain(value: Any) -> Any:
    """numpy scalars and containers as plain JSON-able Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _observed(result: dict[str, Any]) -> str:
    if "observed_value" in result:
        value = _plain(result["observed_value"])
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    if "unexpected_count" in result:
        count, total = result.get("unexpected_count") or 0, result.get("element_count") or 0
        text = f"{count} of {total} unexpected"
        sample = _plain(result.get("partial_unexpected_list") or [])[:_SAMPLE]
        return text + (f": {', '.join(map(repr, sample))}" if sample else "")
    return ""


def _error(exception_info: Any) -> str | None:
    """GE reports one exception record, or one per metric, depending on where it was raised."""
    records = [exception_info] if isinstance(exception_info, dict) and \
        "raised_exception" in exception_info else \
        list(exception_info.values()) if isinstance(exception_info, dict) else []
    for record in records:
        if isinstance(record, dict) and record.get("raised_exception"):
            return str(record.get("exception_message") or "raised an exception")[:500]
    return None


def _context(gx: Any, docs_dir: Path | None) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={})
    context = gx.get_context(mode="ephemeral", project_config=config)
    if docs_dir is not None:
        context.add_data_docs_site(site_name=SITE_NAME, site_config={
            "class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    return context


def safe_run_name(run_id: str) -> str:
    """GE's name for the run: its Data Docs paths are built from it, and run ids (from run.json)
    are untrusted, so anything but letters, digits, `_` and `-` is replaced and a hash keeps names
    apart.

    >>> safe_run_name("a1b2c3")
    'a1b2c3'
    >>> safe_run_name("../x/<y>")
    '___x__y_-29704370'
    """
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", run_id)[:64] or "run"
    if cleaned == run_id:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def run_checks(frames: dict[str, pd.DataFrame], checks: list[Check], *, run_name: str,
               docs_dir: Path | None = None, suite_label: str = "") -> list[CheckResult]:
    """Validate every table against its suite; with `docs_dir`, build Data Docs there."""
    gx = _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    expectations = {check.id: to_expectation(check) for check in checks}
    context = _context(gx, docs_dir)
    source = context.data_sources.add_pandas(DATASOURCE)
    run_id = RunIdentifier(run_name=safe_run_name(run_name), run_time=datetime.now(UTC))
    by_id = {check.id: check for check in checks}
    results: list[CheckResult] = []
    identifiers: dict[str, Any] = {}
    meta = {"claimdiff_suite_version": SUITE_VERSION, "schema_sha256": schema_sha256(),
            "suite_label": suite_label}
    for frame in dict.fromkeys(check.frame for check in checks):
        asset = source.add_dataframe_asset(frame)
        batch = asset.add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(
            name=SUITE_PREFIX + frame, meta={**meta, "table": frame},
            expectations=[expectations[c.id] for c in checks if c.frame == frame]))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=frame, data=batch, suite=suite))
        validated = definition.run(batch_parameters={"dataframe": frames[frame]},
                                   result_format="BASIC", run_id=run_id)
        identifiers[frame] = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
            run_id=run_id, batch_identifier=f"{DATASOURCE}-{frame}")
        if docs_dir is not None:
            _store_escaped(context, identifiers[frame], validated)
        for outcome in validated.results:
            check = by_id[outcome.expectation_config.meta["id"]]
            result = dict(outcome.result or {})
            error = _error(outcome.exception_info)
            results.append(CheckResult(
                check=check, success=bool(outcome.success) and error is None,
                observed=f"error: {error}" if error else _observed(result),
                unexpected=_plain(result.get("partial_unexpected_list") or [])[:_SAMPLE],
                error=error))
    if docs_dir is not None:
        context.build_data_docs(site_names=[SITE_NAME])
        pages = {frame: _page(context, identifier, docs_dir)
                 for frame, identifier in identifiers.items()}
        for checked in results:
            checked.docs_page = pages.get(checked.check.frame)
    order = {check.id: index for index, check in enumerate(checks)}
    return sorted(results, key=lambda r: order[r.check.id])


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(item) for item in value]
    return value


def _store_escaped(context: Any, identifier: Any, validated: Any) -> None:
    """Store the result with every value it found HTML-escaped, for Data Docs: GE renders
    unexpected values into its pages as they are, and they come from untrusted runs (a caption
    or a judgment can hold markup). The result claimdiff reads is left as found."""
    shown = copy.deepcopy(validated)
    for outcome in shown.results:
        outcome.result = _escaped(dict(outcome.result or {}))
    context.validation_results_store.set(identifier, shown)


def _page(context: Any, identifier: Any, docs_dir: Path) -> str | None:
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=SITE_NAME)
    for entry in urls:
        url = entry.get("site_url") or ""
        if url.startswith("file://"):
            path = Path(url2pathname(urlparse(url).path))
            try:
                return path.relative_to(docs_dir).as_posix()
            except ValueError:
                return None
    return None
