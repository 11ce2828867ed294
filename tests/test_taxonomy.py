from __future__ import annotations

import pytest

from claimdiff.config import SeverityConfig, TaxonomyConfig
from claimdiff.rewards.taxonomy import TypeMapper, normalise_label, severity_of
from claimdiff.schemas.rows import CanonicalType as C
from claimdiff.schemas.rows import SeveritySource


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("count_mismatch", C.COUNT),
        ("Color Hallucination", C.COLOR),
        ("colour-error", C.COLOR),
        ("object_hallucination", C.OBJECT_EXISTENCE),
        ("spatial_relation_error", C.SPATIAL_RELATION),
        ("text_omission", C.TEXT_OCR),
        ("material_mismatch", C.MATERIAL),
        ("pose_error", C.ACTION_POSE),
        ("background_omission", C.SCENE_SETTING),
        ("style_mismatch", C.STYLE),
        ("frobnication", C.OTHER),
        ("", C.OTHER),
        (None, C.OTHER),
    ],
)
def test_builtin_mapping(label: str | None, expected: C):
    assert TypeMapper(TaxonomyConfig()).canonical(label) is expected


@pytest.mark.parametrize("label", ["pattern_mismatch", "pattern_error", "wrong_pattern",
                                   "Pattern Hallucination", "texture_omission",
                                   "stripes_error", "Patterned"])
def test_patterns_are_material(label: str):
    # a pattern is the visible side of a material (the synthetic scenes' textures are patterns)
    assert TypeMapper(TaxonomyConfig()).canonical(label) is C.MATERIAL


def test_configured_synonyms_win():
    mapper = TypeMapper(TaxonomyConfig(synonyms={"Logo Error": C.TEXT_OCR, "count": C.OTHER}))
    assert mapper.canonical("logo_error") is C.TEXT_OCR
    assert mapper.canonical("count_mismatch") is C.OTHER


def test_normalise_label():
    assert normalise_label("  Spatial / Relation-Error ") == "spatial_relation_error"


@pytest.mark.parametrize(
    ("label", "judged", "expected"),
    [
        ("color_mismatch", 1, (1, SeveritySource.JUDGE)),
        ("count_mismatch", None, (3, SeveritySource.RULE)),
        ("object_hallucination", None, (3, SeveritySource.RULE)),
        ("style_mismatch", None, (1, SeveritySource.RULE)),
        ("color_mismatch", None, (2, SeveritySource.RULE)),
        (None, None, (2, SeveritySource.RULE)),
    ],
)
def test_severity_rule(label: str | None, judged: int | None, expected: tuple[int, SeveritySource]):
    assert severity_of(label, judged, SeverityConfig()) == expected
