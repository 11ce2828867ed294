"""Open-vocabulary error types -> the canonical taxonomy, and the severity keyword rule.

The judge says compound labels such as `count_mismatch` or `color_hallucination`. The mapping
looks, in order, for: the whole label in the synonym table (configured entries first), then each
`_`/`-`/space-separated token of the label, left to right. Unknown labels map to `other`.

Severity: the judge's severity wins; where it gave none, the first `severity.keyword_rules`
keyword contained in the type decides, else `severity.default`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from claimdiff.config import SeverityConfig, TaxonomyConfig
from claimdiff.schemas.rows import CanonicalType, SeveritySource

C = CanonicalType
BUILTIN_SYNONYMS: Mapping[str, CanonicalType] = {
    # object existence
    "object": C.OBJECT_EXISTENCE, "objects": C.OBJECT_EXISTENCE, "existence": C.OBJECT_EXISTENCE,
    "entity": C.OBJECT_EXISTENCE, "presence": C.OBJECT_EXISTENCE, "item": C.OBJECT_EXISTENCE,
    "person": C.OBJECT_EXISTENCE, "animal": C.OBJECT_EXISTENCE, "identity": C.OBJECT_EXISTENCE,
    # count
    "count": C.COUNT, "counting": C.COUNT, "number": C.COUNT, "quantity": C.COUNT,
    "numeric": C.COUNT, "numerosity": C.COUNT,
    # attributes
    "color": C.COLOR, "colour": C.COLOR, "hue": C.COLOR,
    "material": C.MATERIAL, "texture": C.MATERIAL, "fabric": C.MATERIAL,
    # surface patterns: what a texture looks like where the material itself cannot be seen
    # (the synthetic scenes' striped/dotted/checkered objects; "pattern_mismatch")
    "pattern": C.MATERIAL, "patterns": C.MATERIAL, "patterned": C.MATERIAL,
    "textured": C.MATERIAL, "stripes": C.MATERIAL, "striped": C.MATERIAL, "dotted": C.MATERIAL,
    "checkered": C.MATERIAL, "plaid": C.MATERIAL,
    "size": C.SIZE, "scale": C.SIZE, "height": C.SIZE, "length": C.SIZE,
    "shape": C.SHAPE, "form": C.SHAPE, "geometry": C.SHAPE,
    # relations and actions
    "spatial": C.SPATIAL_RELATION, "relation": C.SPATIAL_RELATION, "position": C.SPATIAL_RELATION,
    "location": C.SPATIAL_RELATION, "layout": C.SPATIAL_RELATION, "orientation": C.SPATIAL_RELATION,
    "relationship": C.SPATIAL_RELATION, "direction": C.SPATIAL_RELATION,
    "action": C.ACTION_POSE, "pose": C.ACTION_POSE, "activity": C.ACTION_POSE,
    "motion": C.ACTION_POSE, "gesture": C.ACTION_POSE, "posture": C.ACTION_POSE,
    "state": C.ACTION_POSE,
    # text
    "text": C.TEXT_OCR, "ocr": C.TEXT_OCR, "sign": C.TEXT_OCR, "label": C.TEXT_OCR,
    "writing": C.TEXT_OCR, "lettering": C.TEXT_OCR, "words": C.TEXT_OCR,
    # scene
    "scene": C.SCENE_SETTING, "setting": C.SCENE_SETTING, "background": C.SCENE_SETTING,
    "environment": C.SCENE_SETTING, "weather": C.SCENE_SETTING, "time": C.SCENE_SETTING,
    "lighting": C.SCENE_SETTING, "place": C.SCENE_SETTING, "indoor": C.SCENE_SETTING,
    "outdoor": C.SCENE_SETTING,
    # style
    "style": C.STYLE, "tone": C.STYLE, "aesthetic": C.STYLE, "mood": C.STYLE, "artistic": C.STYLE,
    "medium": C.STYLE,
}

_TOKEN_SPLIT = re.compile(r"[\s_\-/]+")


def normalise_label(label: str) -> str:
    return "_".join(t for t in _TOKEN_SPLIT.split(label.strip().lower()) if t)


class TypeMapper:
    """Maps open-vocabulary error types to canonical types, built-ins overridden by config."""

    def __init__(self, config: TaxonomyConfig) -> None:
        self._table: dict[str, CanonicalType] = dict(BUILTIN_SYNONYMS)
        self._table.update({normalise_label(k): v for k, v in config.synonyms.items()})

    def canonical(self, label: str | None) -> CanonicalType:
        if not label:
            return C.OTHER
        key = normalise_label(label)
        if key in self._table:
            return self._table[key]
        for token in key.split("_"):
            if token in self._table:
                return self._table[token]
        return C.OTHER


def severity_of(
    error_type: str | None, judged: int | None, config: SeverityConfig
) -> tuple[int, SeveritySource]:
    """The severity of an error and where it came from.

    >>> severity_of("color_mismatch", None, SeverityConfig())
    (2, <SeveritySource.RULE: 'rule'>)
    >>> severity_of("count_mismatch", None, SeverityConfig())
    (3, <SeveritySource.RULE: 'rule'>)
    """
    if judged is not None:
        return judged, SeveritySource.JUDGE
    label = normalise_label(error_type or "")
    for keyword, severity in config.keyword_rules:
        if keyword in label:
            return severity, SeveritySource.RULE
    return config.default, SeveritySource.RULE
