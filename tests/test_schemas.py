from __future__ import annotations

import io
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from claimdiff.schemas.arrow import arrow_schema, from_table, to_table
from claimdiff.schemas.judge import JudgedDifference, JudgeOutput, decoding_schema
from claimdiff.schemas.rows import (
    CanonicalType,
    DecodingParams,
    DifferenceKind,
    DifferenceRow,
    FailureRow,
    InputRow,
    Outcome,
    RewardRow,
    RewardStats,
    RewardValue,
    RowStatus,
    SeveritySource,
    Stage,
    TypeCounts,
)
from claimdiff.schemas.run import RunManifest
from tests.conftest import diff, gold

DECODING = DecodingParams(max_new_tokens=64, temperature=0.0, retry_temperature=0.3, seed=1,
                          max_attempts=2, constrained=True, max_differences=8,
                          max_string_chars=None, output_format="json")


def _difference_row(**overrides: object) -> DifferenceRow:
    values: dict[str, object] = dict(
        run_id="r", sample_id="s", actor_id="a", manifest="m.jsonl", row_index=3,
        difference_index=0,
        aspect="number of dogs", kind=DifferenceKind.CONFLICT, actor_claim="There are two dogs.",
        reference_claim="There is one dog.", actor_span="two dogs", reference_span=None,
        judgment="both_wrong", confidence=0.75,
        outcomes=[Outcome.ACTOR_HALLUCINATION, Outcome.REFERENCE_ERROR], actor_erred=True,
        reference_erred=True, actor_error_type="count_mismatch", actor_error_detail="2 vs 3",
        actor_canonical_type=CanonicalType.COUNT, actor_severity=3,
        actor_severity_source=SeveritySource.JUDGE, reference_error_type="count_mismatch",
        reference_error_detail="1 vs 3", reference_canonical_type=CanonicalType.COUNT,
        reference_severity=2, reference_severity_source=SeveritySource.RULE,
        image_sha256="ab" * 32, judge_model="m", prompt_version="p@1", decoding=DECODING,
        cache_key="k")
    values.update(overrides)
    return DifferenceRow.model_validate(values)


def _stats() -> RewardStats:
    return RewardStats(
        n_differences=2, n_actor_hallucination=1, n_actor_omission=1, n_actor_extra_correct=0,
        n_reference_hallucination=0, n_reference_error=0, n_spurious=1, n_unverifiable=0,
        actor_errors=2, reference_errors=0, actor_severity_1=0, actor_severity_2=1,
        actor_severity_3=1, actor_weighted_errors=2.85, reference_weighted_errors=0.0,
        weighted_hallucination=1.6, weighted_omission=1.25, relative_denominator=2.85,
        actor_errors_by_type=TypeCounts(count=1, color=1), actor_words=9, reference_words=12,
        actor_hedges=1, judge_attempts=2)


ROWS = [
    (DifferenceRow, [_difference_row(), _difference_row(
        difference_index=1, kind=DifferenceKind.ACTOR_ONLY, reference_claim=None,
        outcomes=[Outcome.SPURIOUS], confidence=None, actor_error_type=None,
        actor_canonical_type=None, actor_severity=None, actor_severity_source=None)]),
    (RewardRow, [
        RewardRow(run_id="r", sample_id="s", actor_id="a", manifest="m.jsonl", row_index=0,
                  image_uri="/i.png",
                  status=RowStatus.OK, reward=0.25,
                  rewards=[RewardValue(name="relative", kind="relative", version=1, value=0.25)],
                  stats=_stats(), image_sha256="cd" * 32, judge_model="m", prompt_version="p@1",
                  decoding=DECODING, cache_key="k", metadata='{"split": "train"}'),
        RewardRow(run_id="r", sample_id="s", actor_id="b", manifest="m.jsonl", row_index=1,
                  image_uri="/i.png",
                  status=RowStatus.FAILED, failure_stage=Stage.JUDGE,
                  failure_reason="JudgeOutputError: not valid JSON"),
    ]),
    (FailureRow, [FailureRow(run_id="r", stage=Stage.VALIDATE, error_class="ManifestRowError",
                             message="missing caption", manifest="m.jsonl", row_index=4,
                             raw_input='{"image": "x"}'),
                  FailureRow(run_id="r", stage=Stage.JUDGE, error_class="JudgeOutputError",
                             message="not valid JSON", manifest="m.jsonl", row_index=5,
                             sample_id="s", actor_id="c", raw_output="{", attempts=2,
                             judge_model="m", prompt_version="p@1")]),
    (InputRow, [InputRow(manifest="m.jsonl", row_index=0, image="a.png", image_uri="/d/a.png",
                         reference="A dog.", caption="A cat.", sample_id="s", actor_id="a",
                         gold=json.dumps(gold()))]),
]


@pytest.mark.parametrize(("model", "rows"), ROWS, ids=lambda v: getattr(v, "__name__", ""))
def test_round_trip_model_arrow_parquet_model(model, rows):
    buffer = io.BytesIO()
    pq.write_table(to_table(rows, model), buffer, compression="zstd")
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    assert table.schema.equals(arrow_schema(model), check_metadata=False)
    assert from_table(table, model) == rows


def test_derived_arrow_types():
    schema = arrow_schema(DifferenceRow)
    assert schema.field("outcomes").type == pa.list_(pa.field("item", pa.string(), False))
    assert not schema.field("run_id").nullable
    assert schema.field("actor_claim").nullable
    stats = arrow_schema(RewardRow).field("stats")
    assert stats.nullable
    assert pa.types.is_struct(stats.type)
    assert stats.type.field("actor_errors_by_type").type.num_fields == len(CanonicalType)


def test_type_counts_cover_the_taxonomy():
    assert set(TypeCounts.model_fields) == {c.value for c in CanonicalType}


def test_judge_output_validates_differences():
    ok = JudgeOutput.model_validate(gold(diff("dogs", "two dogs", None, "reference",
                                              actor_error=("count_mismatch", 3))))
    assert ok.differences[0].actor_error is not None
    with pytest.raises(ValidationError, match="actor_claim or a reference_claim"):
        JudgeOutput.model_validate(gold(diff("dogs", None, None, "reference")))
    with pytest.raises(ValidationError, match="invisible"):
        JudgeOutput.model_validate(gold(diff("dogs", None, " \u200b", "reference")))
    with pytest.raises(ValidationError):
        JudgeOutput.model_validate(gold(diff("dogs", "x", None, "maybe")))
    with pytest.raises(ValidationError):
        JudgeOutput.model_validate(gold(diff("dogs", "x", None, "actor",
                                             actor_error=("count", 4))))


def test_decoding_schema_is_derived_and_has_no_string_lengths():
    schema = decoding_schema(max_differences=3, max_string_chars=20)
    text = json.dumps(schema)
    assert "maxLength" not in text
    assert "minLength" not in text
    assert schema["properties"]["differences"]["maxItems"] == 3
    fields = set(JudgedDifference.model_fields)
    with_actor, reference_only = schema["$defs"]["JudgedDifference"]["anyOf"]
    for variant in (with_actor, reference_only):
        assert set(variant["required"]) == fields
        assert variant["properties"]["aspect"]["pattern"].endswith("{0,19}$")
        assert not re.match(variant["properties"]["aspect"]["pattern"], " x")
    # a claimless difference (which JudgedDifference rejects) cannot be decoded
    assert with_actor["properties"]["actor_claim"]["type"] == "string"
    assert reference_only["properties"]["actor_claim"] == {"type": "null"}
    assert reference_only["properties"]["reference_claim"]["type"] == "string"
    claim = re.compile(with_actor["properties"]["actor_claim"]["pattern"])
    assert claim.match("a red car, 20")
    assert not claim.match(" ")
    assert not claim.match("x" * 21)
    assert not claim.match('say "hi"')
    assert schema["$defs"]["Judgment"]["enum"] == [
        "actor", "reference", "both_wrong", "both_supported", "uncertain"]


def test_run_manifest_json_schema_exists():
    assert "accounting" in RunManifest.model_json_schema()["properties"]
