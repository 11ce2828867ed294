"""The training datasets' schemas: derived from the row models, and what `datasets` expects."""

from __future__ import annotations

import pytest

from claimdiff.training.formats import HF_METADATA_KEY, hf_features, parquet_schema
from claimdiff.training.pairs import PairRow
from claimdiff.training.rwr import RwrRow
from claimdiff.training.verl import VerlRow

ROW_MODELS = [PairRow, RwrRow, VerlRow]


@pytest.mark.parametrize("model", ROW_MODELS)
def test_arrow_schema_is_the_one_datasets_derives_from_the_features(model):
    """`datasets` uses stored features only for fields whose Arrow type matches its own
    exactly; a mismatch would silently read images as {bytes, path} structs."""
    datasets = pytest.importorskip("datasets")
    schema = parquet_schema(model)
    features = datasets.Features.from_dict(hf_features(model))
    assert features.arrow_schema.remove_metadata() == schema.remove_metadata()
    assert datasets.Features.from_arrow_schema(schema) == features
    assert list(features) == list(model.model_fields)
    assert HF_METADATA_KEY in schema.metadata


@pytest.mark.parametrize("model", ROW_MODELS)
def test_every_image_column_is_an_image_feature(model):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features.from_arrow_schema(parquet_schema(model))
    assert isinstance(features["images"], datasets.List)
    assert isinstance(features["images"].feature, datasets.Image)


def test_trl_preference_columns_come_first():
    assert list(PairRow.model_fields)[:4] == ["images", "prompt", "chosen", "rejected"]
    assert list(RwrRow.model_fields)[:3] == ["images", "prompt", "completion"]
    # TRL reads a column named `image` as a single image: no row model may have one
    assert all("image" not in m.model_fields for m in ROW_MODELS)
