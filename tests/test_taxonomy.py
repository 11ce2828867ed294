"""Canonical types and severity rules on tables of labels in the styles judges and hallucination
benchmarks use: the released ClaimDiff-RL prompts' `<dimension>_<nature>` types, compound
labels with a generic head in either order, camelCase and spaced labels, and the categories of
CHAIR/POPE (object existence), AMBER (existence, attribute: state, number, action; relation),
FaithScore (entity, count, color, relation, other attributes), MMHal-Bench (attribute,
adversarial object, comparison, counting, spatial relation, environment, holistic, other),
HallusionBench-style visual questions and M-HalDetect/Hal-Eval (object, attribute,
relationship, event)."""

from __future__ import annotations

import pytest

from claimdiff.config import PAPER_SEVERITY_RULES, SeverityConfig, TaxonomyConfig
from claimdiff.rewards.taxonomy import (
    TypeMapper,
    keyword_matches,
    normalise_label,
    rule_severity,
    severity_of,
)
from claimdiff.schemas.rows import CanonicalType as C
from claimdiff.schemas.rows import SeveritySource

LABELS: list[tuple[str | None, C]] = [
    # the released prompts' examples (v1, v2, v4, v5, v6)
    ("color_hallucination", C.COLOR), ("layout_omission", C.SPATIAL_RELATION),
    ("detail_omission", C.OTHER), ("text_omission", C.TEXT_OCR),
    ("text_truncation_error", C.TEXT_OCR), ("count_mismatch", C.COUNT),
    ("spatial_relation_error", C.SPATIAL_RELATION), ("style_misinterpretation", C.STYLE),
    ("identity_hallucination", C.OBJECT_EXISTENCE), ("context_overreach", C.SCENE_SETTING),
    ("lighting_misinterpretation", C.SCENE_SETTING),
    ("camera_angle_misinterpretation", C.STYLE), ("repetition_error", C.OTHER),
    ("shot_scale_misinterpretation", C.STYLE), ("object_omission", C.OBJECT_EXISTENCE),
    ("attribute_omission", C.ATTRIBUTE), ("color_omission", C.COLOR),
    ("spatial_relation_omission", C.SPATIAL_RELATION), ("unverifiable_claim", C.OTHER),
    ("speculation_error", C.OTHER), ("unverifiable_detail", C.OTHER),
    ("identity_omission", C.OBJECT_EXISTENCE), ("NONE", C.OTHER),
    # a generic head first: the specific dimension wins
    ("object_color_hallucination", C.COLOR), ("object_number_hallucination", C.COUNT),
    ("object_shape_error", C.SHAPE), ("object_material_mismatch", C.MATERIAL),
    ("object_size_error", C.SIZE), ("object_position_error", C.SPATIAL_RELATION),
    ("object_location_hallucination", C.SPATIAL_RELATION),
    ("object_count_mismatch", C.COUNT), ("object_texture_error", C.MATERIAL),
    ("object_attribute_error", C.ATTRIBUTE), ("object_relation_hallucination",
                                              C.SPATIAL_RELATION),
    ("object_action_error", C.ACTION_POSE), ("object_text_misread", C.TEXT_OCR),
    ("object_existence_hallucination", C.OBJECT_EXISTENCE),
    ("entity_color_error", C.COLOR), ("person_count_error", C.COUNT),
    ("person_pose_error", C.ACTION_POSE), ("animal_species_error", C.OBJECT_EXISTENCE),
    ("attribute_color_hallucination", C.COLOR), ("attribute_size_mismatch", C.SIZE),
    ("attribute_state_error", C.ACTION_POSE), ("attribute_number_error", C.COUNT),
    ("attribute_action_hallucination", C.ACTION_POSE), ("attribute_hallucination", C.ATTRIBUTE),
    ("relationship_hallucination", C.SPATIAL_RELATION),
    ("relationship_spatial_error", C.SPATIAL_RELATION),
    ("relationship_action_error", C.ACTION_POSE),
    ("relation_hallucination", C.SPATIAL_RELATION),
    ("camera_perspective_error", C.STYLE), ("camera_viewpoint_misinterpretation", C.STYLE),
    ("character_identification_error", C.OBJECT_EXISTENCE),
    ("character_identity_hallucination", C.OBJECT_EXISTENCE),
    ("scene_hallucination", C.SCENE_SETTING), ("scene_object_hallucination", C.OBJECT_EXISTENCE),
    ("scene_text_omission", C.TEXT_OCR), ("scene_lighting_error", C.SCENE_SETTING),
    ("scene_weather_misinterpretation", C.SCENE_SETTING),
    ("background_object_omission", C.OBJECT_EXISTENCE), ("background_color_error", C.COLOR),
    ("ocr_error", C.TEXT_OCR), ("ocr_number_error", C.TEXT_OCR),
    ("ocr_hallucination", C.TEXT_OCR), ("text_color_error", C.COLOR),
    # the same labels with the dimension last, or in other word orders
    ("hallucination_of_object_color", C.COLOR), ("hallucinated_color_of_object", C.COLOR),
    ("wrong_number_of_objects", C.COUNT), ("number_of_people_wrong", C.COUNT),
    ("error_in_spatial_relation", C.SPATIAL_RELATION), ("color_of_text_error", C.COLOR),
    ("misidentified_character", C.OBJECT_EXISTENCE), ("hallucinated_object", C.OBJECT_EXISTENCE),
    ("missing_text", C.TEXT_OCR), ("omitted_background", C.SCENE_SETTING),
    # case, separators, camelCase, plurals, prefixes
    ("ObjectColorHallucination", C.COLOR), ("NumberOfObjects", C.COUNT),
    ("SpatialRelationError", C.SPATIAL_RELATION), ("OCRError", C.TEXT_OCR),
    ("Color Hallucination", C.COLOR), ("colour-error", C.COLOR), ("COLORS_WRONG", C.COLOR),
    ("object counts", C.COUNT), ("shapes/sizes", C.SHAPE), ("relations", C.SPATIAL_RELATION),
    ("miscount", C.COUNT), ("miscolored_object", C.COLOR), ("misplaced_object",
                                                            C.SPATIAL_RELATION),
    ("misread_sign", C.TEXT_OCR), ("nonexistent_object", C.OBJECT_EXISTENCE),
    ("quantities_wrong", C.COUNT), ("  Spatial / Relation-Error ", C.SPATIAL_RELATION),
    # benchmark categories
    ("existence", C.OBJECT_EXISTENCE), ("object_existence", C.OBJECT_EXISTENCE),  # POPE, AMBER
    ("chair_object_hallucination", C.OBJECT_EXISTENCE),  # CHAIR
    ("adversarial_object", C.OBJECT_EXISTENCE), ("counting", C.COUNT),  # MMHal-Bench
    ("spatial_relation", C.SPATIAL_RELATION), ("environment", C.SCENE_SETTING),
    ("object_attribute", C.ATTRIBUTE), ("comparison", C.OTHER), ("holistic", C.OTHER),
    ("other", C.OTHER),
    ("attribute_state", C.ACTION_POSE), ("attribute_number", C.COUNT),  # AMBER
    ("attribute_action", C.ACTION_POSE), ("relation", C.SPATIAL_RELATION),
    ("entity", C.OBJECT_EXISTENCE), ("count", C.COUNT), ("color", C.COLOR),  # FaithScore
    ("other_attribute", C.ATTRIBUTE),
    ("event_hallucination", C.ACTION_POSE), ("relationship", C.SPATIAL_RELATION),  # Hal-Eval
    ("object_hallucination", C.OBJECT_EXISTENCE), ("attribute", C.ATTRIBUTE),  # M-HalDetect
    ("visual_illusion", C.OTHER), ("language_hallucination", C.OTHER),  # HallusionBench
    # the synthetic scenes' types, the project's prompt's examples
    ("object_part_hallucination", C.OBJECT_EXISTENCE), ("texture_mismatch", C.MATERIAL),
    ("text_error", C.TEXT_OCR), ("scene_error", C.SCENE_SETTING),
    ("background_error", C.SCENE_SETTING), ("style_error", C.STYLE),
    ("repetition_redundancy", C.OTHER), ("pattern_mismatch", C.MATERIAL),
    ("wrong_pattern", C.MATERIAL), ("stripes_error", C.MATERIAL), ("Patterned", C.MATERIAL),
    ("pose_error", C.ACTION_POSE), ("material_mismatch", C.MATERIAL),
    # other dimensions in the wild
    ("facial_expression_error", C.ACTION_POSE), ("gesture_misinterpretation", C.ACTION_POSE),
    ("time_of_day_error", C.SCENE_SETTING), ("weather_hallucination", C.SCENE_SETTING),
    ("brand_name_omission", C.TEXT_OCR), ("logo_misread", C.TEXT_OCR),
    ("license_plate_number_error", C.TEXT_OCR), ("font_style_error", C.TEXT_OCR),
    ("person_gender_error", C.ATTRIBUTE), ("depth_of_field_error", C.STYLE),
    ("artistic_style_mismatch", C.STYLE), ("medium_misinterpretation", C.STYLE),
    ("orientation_error", C.SPATIAL_RELATION), ("direction_mismatch", C.SPATIAL_RELATION),
    ("height_exaggeration", C.SIZE), ("outline_error", C.SHAPE),
    ("stone_texture_error", C.MATERIAL), ("frobnication", C.OTHER), ("", C.OTHER), (None, C.OTHER),
]


def test_the_table_is_large_and_unambiguous():
    assert len(LABELS) >= 100
    labels = [label for label, _ in LABELS]
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize(("label", "expected"), LABELS, ids=[repr(lb) for lb, _ in LABELS])
def test_the_most_specific_dimension_wins(label: str | None, expected: C):
    assert TypeMapper(TaxonomyConfig()).canonical(label) is expected


@pytest.mark.parametrize(("words", "expected"), [
    (("object", "color", "hallucination"), C.COLOR),
    (("number", "object", "error"), C.COUNT),
    (("relation", "action", "error"), C.ACTION_POSE),
    (("scene", "object", "omission"), C.OBJECT_EXISTENCE),
    (("text", "color", "error"), C.COLOR),
])
def test_word_order_does_not_matter(words: tuple[str, ...], expected: C):
    import itertools

    mapper = TypeMapper(TaxonomyConfig())
    for order in itertools.permutations(words):
        assert mapper.canonical("_".join(order)) is expected, order


def test_configured_synonyms_win():
    mapper = TypeMapper(TaxonomyConfig(synonyms={"Logo Error": C.TEXT_OCR, "count": C.OTHER,
                                                 "sky hue": C.SCENE_SETTING}))
    assert mapper.canonical("logo_error") is C.TEXT_OCR
    assert mapper.canonical("count_mismatch") is C.OTHER  # a configured word outranks all
    assert mapper.canonical("object_color_mismatch") is C.COLOR
    assert mapper.canonical("wrong_sky_hue") is C.SCENE_SETTING  # a configured phrase


def test_normalise_label():
    assert normalise_label("  Spatial / Relation-Error ") == "spatial_relation_error"
    assert normalise_label("ObjectColorHallucination") == "object_color_hallucination"
    assert normalise_label("OCRError") == "ocr_error"


# (label, claimdiff rule set, paper rule set): the paper column is the released
# infer_severity_3_from_error_type, worked out by hand from its keyword lists and order
SEVERITIES: list[tuple[str, int, int]] = [
    ("count_mismatch", 3, 3), ("color_hallucination", 3, 3), ("color_mismatch", 2, 3),
    ("spatial_relation_error", 3, 2), ("style_misinterpretation", 1, 1),
    ("camera_angle_misinterpretation", 2, 1), ("lighting_misinterpretation", 2, 1),
    ("text_truncation_error", 2, 2), ("layout_omission", 2, 2), ("detail_omission", 2, 2),
    ("identity_hallucination", 3, 3), ("context_overreach", 2, 3), ("repetition_error", 1, 2),
    ("object_omission", 3, 2), ("text_omission", 2, 2), ("unverifiable_claim", 2, 2),
    ("style_hallucination", 3, 3), ("aesthetic_mismatch", 1, 3), ("subjective_tone", 1, 1),
    ("incorrect_count", 3, 3), ("wrong_color", 2, 3), ("nonexistent_object", 3, 3),
    ("fabricated_detail", 3, 3), ("partial_description", 2, 2), ("missing_text", 2, 2),
    ("incomplete_list", 2, 2), ("tone_mismatch", 1, 3), ("stone_texture_error", 2, 2),
    ("account_number_text", 3, 2), ("miscount", 3, 2), ("misidentified_person", 3, 2),
    ("Number Of Dogs", 3, 2), ("peripheral_detail_omission", 1, 2),
    ("repetition_redundancy", 1, 2), ("frobnication", 2, 2), ("", 2, 2),
    ("correlation_claim", 2, 2), ("objective_error", 3, 2),
]


@pytest.mark.parametrize(("label", "claimdiff", "paper"), SEVERITIES,
                         ids=[s[0] or "empty" for s in SEVERITIES])
def test_severity_rule_sets(label: str, claimdiff: int, paper: int):
    assert rule_severity(label, SeverityConfig()) == claimdiff
    assert rule_severity(label, SeverityConfig(rule_set="paper")) == paper


def test_paper_rule_set_is_the_released_substring_rule():
    config = SeverityConfig(rule_set="paper")
    assert config.rules == PAPER_SEVERITY_RULES
    assert config.match == "substring"
    # substrings anywhere, the released quirks included: "terror" contains "error"
    assert rule_severity("terror_scene", config) == 2
    assert rule_severity("COLOR_MISMATCH", config) == 3


def test_word_prefix_matching():
    assert keyword_matches("count", "counting_error", "word_prefix")
    assert keyword_matches("count", "object_miscount", "word_prefix")
    assert not keyword_matches("count", "account_error", "word_prefix")
    assert not keyword_matches("tone", "stone_color", "word_prefix")
    assert keyword_matches("spatial_relation", "object_spatial_relation_error", "word_prefix")
    assert keyword_matches("tone", "stone_color", "substring")


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


def test_the_rule_can_override_the_judge():
    # the released code's default (USE_MODEL_JUDGE_SEVERITY=false): the rule decides every one
    config = SeverityConfig(rule_set="paper", judge_severity=False)
    assert severity_of("color_mismatch", 1, config) == (3, SeveritySource.RULE)


def test_custom_rules_and_validation():
    config = SeverityConfig(keyword_rules=[("sky", 1)], keyword_match="substring", default=3)
    assert rule_severity("skyline_error", config) == 1
    assert rule_severity("count_mismatch", config) == 3
    with pytest.raises(ValueError, match="severities must be 1, 2 or 3"):
        SeverityConfig(keyword_rules=[("x", 4)])
    with pytest.raises(ValueError, match="keywords must not be empty"):
        SeverityConfig(keyword_rules=[(" ", 1)])
