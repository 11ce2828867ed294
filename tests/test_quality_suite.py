"""The quality suite as data: derivation from the row models, config, span check, offline Data
Docs. No Great Expectations here (see test_quality_report.py for runs through it)."""

from __future__ import annotations

import enum
import typing

import pyarrow as pa
import pytest
from pydantic import BaseModel, Field

from claimdiff.errors import ConfigError
from claimdiff.quality.config import (
    MAX_CONFIG_BYTES,
    QualityConfig,
    Where,
    parse_quality_config,
)
from claimdiff.quality.datadocs import CSP, offline_html
from claimdiff.quality.expectations import (
    DATASET_MODELS,
    FAMILIES,
    CheckContext,
    build_suite,
    frame_layouts,
    layout_checks,
    model_checks,
    table_of,
)
from claimdiff.quality.frames import span_found, type_problem
from claimdiff.schemas.arrow import arrow_type
from claimdiff.schemas.judge import Judgment
from claimdiff.schemas.rows import (
    DecodingParams,
    DifferenceRow,
    Outcome,
    RewardRow,
    RewardStats,
    Stage,
    SwapCheck,
)


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    n: int = Field(ge=0)
    note: str | None = None


class Toy(BaseModel):
    count: int = Field(ge=1, lt=5)
    share: float | None = Field(default=None, gt=0.0, le=1.0)
    colour: Colour
    maybe_colour: Colour | None = None
    level: typing.Literal[1, 2, 3]
    name: str = Field(min_length=2, max_length=9, pattern=r"^[a-z]+$")
    required_inner: Inner
    optional_inner: Inner | None = None
    colours: list[Colour]
    inners: list[Inner] = Field(default_factory=list)
    texts: list[str] | None = None


def _by_id(checks):
    return {c.id: c for c in checks}


def test_a_model_derives_its_value_checks():
    checks = _by_id(model_checks(Toy, "toy"))
    assert checks["toy.count.range"].kwargs == {"column": "count", "min_value": 1,
                                                "max_value": 5, "strict_max": True}
    assert checks["toy.share.range"].kwargs == {"column": "share", "min_value": 0.0,
                                                "strict_min": True, "max_value": 1.0}
    assert "toy.share.not_null" not in checks
    assert "toy.count.not_null" in checks
    assert checks["toy.colour.in_set"].kwargs["value_set"] == ["red", "blue"]
    assert checks["toy.maybe_colour.in_set"].kwargs["value_set"] == ["red", "blue"]
    assert "toy.maybe_colour.not_null" not in checks
    assert checks["toy.level.in_set"].kwargs["value_set"] == [1, 2, 3]
    assert checks["toy.name.length"].kwargs == {"column": "name", "min_value": 2,
                                                "max_value": 9}
    assert checks["toy.name.pattern"].kwargs["regex"] == "^[a-z]+$"
    # a required nested model is flattened; an optional one and lists are tables of their own
    assert checks["toy.required_inner.n.range"].kwargs["min_value"] == 0
    assert "toy.required_inner.n.not_null" in checks
    assert not any(i.startswith("toy.optional_inner.") for i in checks)
    assert "toy.colours.not_null" in checks
    assert "toy.inners.not_null" in checks
    assert "toy.texts.not_null" not in checks
    assert table_of(Toy.model_fields["optional_inner"].annotation) is Inner
    assert table_of(Toy.model_fields["inners"].annotation) is Inner
    assert table_of(Toy.model_fields["colours"].annotation) is Colour
    assert table_of(Toy.model_fields["texts"].annotation) is None
    assert table_of(Toy.model_fields["required_inner"].annotation) is None


def test_the_row_models_give_these_tables():
    layouts = {layout.name: layout for layout in frame_layouts()}
    assert set(layouts) == {
        "differences", "rewards", "failures", "differences.outcomes", "rewards.rewards",
        "rewards.stats", "rewards.stats.labels", "rewards.swap", "rewards.decoding"}
    assert layouts["rewards.stats"].item is RewardStats
    assert layouts["rewards.swap"].item is SwapCheck
    assert layouts["rewards.decoding"].item is DecodingParams
    assert layouts["differences.outcomes"].item is Outcome


def _enum_fields(model: type[BaseModel]):
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            yield name, annotation


@pytest.mark.parametrize("model", [DifferenceRow, RewardRow, *DATASET_MODELS.values()])
def test_every_enum_field_of_the_datasets_is_checked_with_all_its_values(model):
    frame = next(layout.name for layout in frame_layouts() if layout.item is model)
    checks = _by_id(model_checks(model, frame))
    fields = list(_enum_fields(model))
    assert fields
    for name, enum_type in fields:
        assert checks[f"{frame}.{name}.in_set"].kwargs["value_set"] == [
            member.value for member in enum_type]


def test_the_issue_s_value_rules_come_from_the_models():
    checks = _by_id(c for layout in frame_layouts() for c in layout_checks(layout))
    assert checks["differences.confidence.range"].kwargs == {
        "column": "confidence", "min_value": 0.0, "max_value": 1.0}
    for side in ("actor", "reference"):
        assert checks[f"differences.{side}_severity.range"].kwargs == {
            "column": f"{side}_severity", "min_value": 1, "max_value": 3}
    assert checks["differences.judgment.in_set"].kwargs["value_set"] == [j.value for j in Judgment]
    assert checks["differences.outcomes.outcomes.in_set"].kwargs["value_set"] == [
        o.value for o in Outcome]
    assert checks["failures.stage.in_set"].kwargs["value_set"] == [s.value for s in Stage]
    # a preset value may be null (a holistic preset on a row without a holistic score)
    assert "rewards.rewards.value.not_null" not in checks
    assert checks["rewards.rewards.name.not_null"].frame == "rewards.rewards"
    assert checks["differences.decoding.seed.not_null"].frame == "differences"


def _context(**changes):
    context = CheckContext(run_id="r1", run_max_failure_share=0.1,
                           presets=["relative", "lambda_1"], primary="relative",
                           metrics=["noise.swap_judgment_consistency", "drift.severity",
                                    "drift.reward_mean.relative"],
                           frames={layout.name for layout in frame_layouts()} | {
                               "schema", "rows", "images", "accounting", "metrics"})
    for key, value in changes.items():
        setattr(context, key, value)
    return context


def test_the_suite_has_unique_ids_stable_families_and_configured_limits():
    config = parse_quality_config("""
thresholds:
  max_failure_share: 0.05
  max_failure_share_by_stage: {judge: 0.02}
  max_failure_share_by_reason: {ImageError: 0.01}
  reward_bounds_by_preset: {lambda_1: [0.5, 1.0]}
drift: {max_severity_distance: 0.3}
""")
    checks, skipped, notes = build_suite(_context(), config)
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids))
    assert {c.family for c in checks} <= set(FAMILIES)
    assert not skipped
    assert not notes
    by_id = _by_id(checks)
    assert by_id["health.failure_share"].kwargs["max_value"] == 0.05
    assert by_id["health.failure_share.stage.judge"].kwargs == {
        "column": "failed_stage.judge", "min_value": 0.0, "max_value": 0.02}
    assert by_id["health.failure_share.reason.ImageError"].kwargs["max_value"] == 0.01
    assert by_id["rewards.rewards.value.range.lambda_1"].kwargs["min_value"] == 0.5
    assert by_id["rewards.rewards.value.range.relative"].kwargs["min_value"] == 0.0
    assert by_id["rewards.rewards.name.configured"].kwargs["value_set"] == ["relative",
                                                                           "lambda_1"]
    assert by_id["drift.severity"].kwargs["max_value"] == 0.3
    assert by_id["drift.reward_mean.relative"].kwargs["max_value"] == 0.1
    assert by_id["noise.swap_judgment_consistency"].kwargs["min_value"] == 0.7
    assert by_id["schema.rewards"].where == Where(column="dataset", op="==", value="rewards")
    # without its own limit, the failure share defaults to the run's run.max_failure_share
    default, _, _ = build_suite(_context(run_max_failure_share=0.25), QualityConfig())
    assert _by_id(default)["health.failure_share"].kwargs["max_value"] == 0.25


def test_unreadable_columns_and_empty_tables_skip_their_checks_only():
    checks, skipped, _ = build_suite(_context(
        unusable={"differences:confidence": "wrong type in shard part-0",
                  "rewards.rewards:": "absent from shard part-0"},
        empty={"health.spurious_share": "no differences"}), QualityConfig())
    reasons = {s.id: s.reason for s in skipped}
    assert reasons["differences.confidence.range"].startswith("column confidence: wrong type")
    assert "differences.confidence.not_null" not in reasons  # confidence is nullable
    assert reasons["health.spurious_share"] == "no differences"
    every, _, _ = build_suite(_context(), QualityConfig())
    on_rewards = {c.id for c in every if c.frame == "rewards.rewards"}
    assert len(on_rewards) > 3
    assert {i for i in reasons if i in on_rewards} == on_rewards
    assert not [c for c in checks if c.frame == "rewards.rewards"]
    assert len(checks) + len(skipped) == len(every)
    assert "schema.differences" in {c.id for c in checks}
    assert "health.unverifiable_share" in {c.id for c in checks}


def test_extensions_and_disables_from_the_config_file():
    config = parse_quality_config("""
suite_label: team-a/3
disable: ["rewards.decoding.*", "no.such.*"]
expectations:
  - id: team.caption_words
    frame: rewards.stats
    type: expect_column_values_to_be_between
    kwargs: {column: actor_words, min_value: 3, max_value: 200}
    description: captions are 3 to 200 words
  - id: team.ok_rows_have_images
    frame: rewards
    type: expect_column_values_to_not_be_null
    kwargs: {column: image_sha256}
    where: {column: status, op: "==", value: ok}
""")
    checks, _, notes = build_suite(_context(), config)
    by_id = _by_id(checks)
    assert not [i for i in by_id if i.startswith("rewards.decoding.")]
    assert notes == ["disable: 'no.such.*' matches no expectation of this run"]
    assert by_id["team.caption_words"].family == "custom"
    assert by_id["team.caption_words"].description == "captions are 3 to 200 words"
    assert by_id["team.ok_rows_have_images"].where == Where(column="status", op="==",
                                                            value="ok")
    with pytest.raises(ConfigError, match="unknown frame 'nowhere'"):
        build_suite(_context(), parse_quality_config(
            "expectations: [{id: x, frame: nowhere, type: expect_column_to_exist}]"))
    with pytest.raises(ConfigError, match="already in use"):
        build_suite(_context(), parse_quality_config(
            "expectations: [{id: health.failure_share, frame: rows, "
            "type: expect_column_to_exist, kwargs: {column: failed}}]"))


@pytest.mark.parametrize(("text", "message"), [
    ("thresholds: {max_spurious_share: 1.5}", "max_spurious_share"),
    ("thresholds: {spurious: 0.1}", "spurious"),
    ("version: 2", "version"),
    ("- a list", "mapping at the top level"),
    ("a: &x [1, 2]\nb: *x", "aliases are not allowed"),
    ("thresholds: {reward_bounds: [1, 0]}", "1.0 > 0.0"),
    ("thresholds: {max_failure_share_by_stage: {nowhere: 0.1}}", "nowhere"),
    ("thresholds: {max_failure_share_by_reason: {X: 2}}", "shares must lie in"),
    ("expectations: [{id: a, frame: rewards, type: expect_column_to_exist, "
     "kwargs: {column: x, row_condition: 'x > 1'}}]", "row_condition"),
    ("expectations: [{id: a, frame: rewards, type: drop_table}]", "type"),
    ("expectations: [{id: 'a b', frame: rewards, type: expect_column_to_exist}]", "id"),
    ("expectations: [{id: a, frame: rewards, type: expect_column_to_exist, "
     "where: {column: s, op: in, value: ok}}]", "needs a list"),
    ("expectations: [{id: a, frame: r, type: expect_x}, {id: a, frame: r, type: expect_y}]",
     "unique"),
    ("key: [unclosed", "not valid YAML"),
])
def test_a_bad_quality_config_names_its_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_quality_config(text)


def test_quality_config_size_bound_and_overrides(tmp_path):
    from claimdiff.quality.config import load_quality_config

    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_quality_config(str(big))
    with pytest.raises(ConfigError, match="cannot read"):
        load_quality_config(str(tmp_path / "missing.yaml"))
    small = tmp_path / "q.yaml"
    small.write_text("thresholds: {max_spurious_share: 0.3}\n")
    config = load_quality_config(str(small), {"thresholds.max_unverifiable_share": 0.05,
                                              "drift.min_errors": 3})
    assert config.thresholds.max_spurious_share == 0.3
    assert config.thresholds.max_unverifiable_share == 0.05
    assert config.drift.min_errors == 3
    with pytest.raises(ConfigError, match="is not a mapping"):
        parse_quality_config("thresholds: 3", {"thresholds.max_spurious_share": 0.1})


@pytest.mark.parametrize(("span", "text", "found"), [
    ("two dogs", "There are two dogs.", True),
    ("Two   DOGS.", "there are two dogs on a sofa", True),
    ('"TAXI"', 'A sign that says "TAXI" stands.', True),
    ("ﬁve cats", "five cats sleep", True),  # compatibility forms (the fi ligature)
    ("three dogs", "There are two dogs.", False),
    ("dogs on the sofa", "There are two dogs.", False),
    (None, "anything", True),
    (float("nan"), "anything", True),  # pandas reads a null string as NaN
    ("  ..  ", "anything", True),  # nothing quoted
    ("two dogs", None, False),
])
def test_span_check(span, text, found):
    assert span_found(span, text) is found


def test_type_problems_allow_older_runs_and_name_wrong_types():
    annotation = RewardRow.model_fields["stats"].annotation
    expected = arrow_type(annotation)
    assert type_problem(annotation, expected) == (None, [])
    older = pa.struct([f for f in expected if f.name != "verify_disagreements"])
    assert type_problem(annotation, older) == (None, ["verify_disagreements"])
    no_required = pa.struct([f for f in expected if f.name != "n_differences"])
    assert type_problem(annotation, no_required) == ("field n_differences missing", [])
    confidence = DifferenceRow.model_fields["confidence"].annotation
    problem, _ = type_problem(confidence, pa.string())
    assert problem == "expected double, found string"
    rewards = RewardRow.model_fields["rewards"].annotation
    problem, _ = type_problem(rewards, pa.list_(pa.struct([("name", pa.string())])))
    assert problem == "items: field kind missing"


GE_PAGE = """<!DOCTYPE html><html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<link rel="stylesheet" type="text/css" href="//cdn.example/x.css">
<link rel="icon" href="../../static/images/favicon.ico">
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script>$(".ge-walkthrough-modal").modal();</script>
<style>.logo { background: url('https://example.s3.amazonaws.com/dark.png') 0 0 no-repeat; }
@import url("https://cdn.example/more.css");
.font { src: url("../../static/fonts/a.otf"); }</style>
</head><body><img src="https://example.s3.amazonaws.com/logo-long.png?d=1">
<img src="static/images/local.png"><a href="https://greatexpectations.io">GX</a>
<SCRIPT type="text/javascript">
 console.log("x")
</SCRIPT><table><tr><td>kept</td></tr></table></body></html>"""


def test_data_docs_pages_lose_remote_resources_and_scripts_only():
    page = offline_html(GE_PAGE)
    lowered = page.lower()
    assert "<script" not in lowered
    assert "bootstrapcdn" not in page
    assert "cdn.example" not in page
    assert "s3.amazonaws" not in page
    assert "../../static/images/favicon.ico" in page
    assert "static/images/local.png" in page
    assert '<a href="https://greatexpectations.io">' in page  # a link is not a fetch
    assert "<td>kept</td>" in page
    assert "background: none 0 0 no-repeat" in page
    assert 'url("../../static/fonts/a.otf")' in page
    assert f'content="{CSP}"' in page
    assert page.index("Content-Security-Policy") < page.index("<body>")


@pytest.mark.parametrize(("tag", "kept"), [
    ('<label class="btn" onclick="showAllValidations()">', '<label class="btn">'),
    ("<button ONCLICK='x()' id=b>", "<button id=b>"),
    ("<div onmouseover=go() data-x=1>", "<div data-x=1>"),
    ('<img src="a.png" onerror = "f()" alt="">', '<img src="a.png" alt="">'),
    ("<body onload=\"init()\">", "<body>"),
])
def test_data_docs_pages_lose_inline_event_handlers(tag: str, kept: str) -> None:
    assert kept in offline_html(f"<html><head></head><body>{tag}</body></html>")


def test_escaped_text_that_looks_like_a_handler_is_left_as_written() -> None:
    text = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; and a onclick=b in prose"
    assert text in offline_html(f"<html><head></head><body><p>{text}</p></body></html>")
