"""Open-vocabulary error types -> the canonical taxonomy, and the severity keyword rule.

**Canonical type: the most specific dimension the label names, whatever the word order.**
Judges write compound labels with a generic head first or last (`object_color_hallucination`,
`color_hallucination_of_object`, `ObjectNumberError`, `relationship_hallucination`). The label is
split into words (camelCase, `_`, `-`, `/`, spaces and other punctuation separate; lower-cased;
a plural `s`/`es`/`ies` and a `mis`/`non` prefix are folded: `colours`, `miscount`,
`misplaced`). Each word, or phrase of up to three words (`camera angle`, `shot scale`,
`time of day`, `license plate`), that names a dimension gets the canonical type and rank of that
dimension:

- rank 4: a word or phrase given in `taxonomy.synonyms`;
- rank 3, specific: colour; count (number, quantity); material (texture, pattern); size; shape;
  spatial (position, location, layout, orientation, direction); text (OCR, sign, logo, brand,
  font); action (pose, activity, gesture, state, expression); style (camera, angle, perspective,
  shot, composition); scene specifics (weather, lighting, time, season); person attributes
  (gender, age: attribute);
- rank 2: relation / relationship (spatial relation), interaction (action), attribute /
  property (attribute), identity / identification / character / species (object existence);
- rank 1: object, entity, item, person, animal, existence, presence (object existence);
- rank 0: scene, setting, background, environment, context, place (scene).

The highest rank wins; between dimensions of the same rank the fixed order colour, shape,
material, size, spatial relation, text, count, action, style, scene, attribute, object existence
decides (so `text_color_error` is colour, `ocr_number_error` text, whatever the order of the
words). A label naming no dimension (`hallucination`, `detail_omission`, `repetition_error`) is
`other`. Before any of this, a whole label found in `taxonomy.synonyms` maps as configured.

**Severity.** The judge's severity (1-3) wins unless `severity.judge_severity` is false; else the
first of the rule set's `(keyword, severity)` pairs that matches the type decides, else
`severity.default`. `word_prefix` matching (claimdiff's rule set): the keyword starts a word of
the normalised label, or follows a `mis`/`non` prefix of one (`count` matches `counting` and
`miscount`, not `account`; `tone` does not match `stone`). `substring` matching (the `paper`
rule set, the released code's `infer_severity_3_from_error_type`): the keyword anywhere in the
lower-cased label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from claimdiff.config import SeverityConfig, TaxonomyConfig
from claimdiff.schemas.rows import CanonicalType, SeveritySource

C = CanonicalType
CONFIGURED_RANK = 4

# rank 3: a specific dimension
_SPECIFIC: dict[CanonicalType, tuple[str, ...]] = {
    C.COLOR: ("color", "colour", "hue", "tint", "colored", "coloured", "coloring", "colouring",
              "colorful", "colourful", "chromatic"),
    C.COUNT: ("count", "counting", "counted", "number", "numbers", "quantity", "numeric",
              "numerosity", "amount", "cardinality", "plurality", "many"),
    C.MATERIAL: ("material", "texture", "textured", "fabric", "pattern", "patterned",
                 "stripe", "striped", "dotted", "dots", "checkered", "checked", "plaid",
                 "surface"),
    C.SIZE: ("size", "sized", "scale", "height", "length", "width", "big", "small", "large",
             "tall", "magnitude"),
    C.SHAPE: ("shape", "shaped", "form", "geometry", "outline", "contour"),
    C.SPATIAL_RELATION: ("spatial", "position", "positional", "positioned", "positioning",
                         "location", "located", "layout", "orientation", "direction",
                         "directional", "arrangement", "placement", "placed", "distance",
                         "proximity", "left", "right", "above", "below", "behind"),
    C.TEXT_OCR: ("text", "textual", "ocr", "sign", "signage", "label", "labeled", "labelled",
                 "writing", "written", "lettering", "letter", "word", "inscription", "font",
                 "typography", "typographic", "logo", "brand", "read", "reading", "numeral",
                 "digit", "transcription", "spelling", "spelled"),
    C.ACTION_POSE: ("action", "pose", "posture", "activity", "motion", "movement", "gesture",
                    "state", "behavior", "behaviour", "event", "expression", "emotion", "verb"),
    C.STYLE: ("style", "stylistic", "tone", "aesthetic", "mood", "artistic", "art", "medium",
              "genre", "atmosphere", "camera", "angle", "perspective", "viewpoint", "view",
              "shot", "framing", "composition", "crop", "cropping", "zoom", "focus", "blur",
              "lens", "exposure", "photographic", "rendering"),
    C.SCENE_SETTING: ("weather", "lighting", "light", "illumination", "shadow", "time",
                      "season", "daytime", "nighttime", "indoor", "outdoor"),
    C.ATTRIBUTE: ("gender", "age", "sex"),
}
# rank 2: a dimension that is less specific than those above, more than an object
_MIDDLE: dict[str, CanonicalType] = {
    "relation": C.SPATIAL_RELATION, "relationship": C.SPATIAL_RELATION,
    "relational": C.SPATIAL_RELATION,
    "interaction": C.ACTION_POSE, "interacting": C.ACTION_POSE,
    "attribute": C.ATTRIBUTE, "attribution": C.ATTRIBUTE, "property": C.ATTRIBUTE,
    "characteristic": C.ATTRIBUTE, "feature": C.ATTRIBUTE, "appearance": C.ATTRIBUTE,
    "identity": C.OBJECT_EXISTENCE, "identification": C.OBJECT_EXISTENCE,
    "identify": C.OBJECT_EXISTENCE, "identified": C.OBJECT_EXISTENCE,
    "character": C.OBJECT_EXISTENCE, "species": C.OBJECT_EXISTENCE, "breed": C.OBJECT_EXISTENCE,
    "recognition": C.OBJECT_EXISTENCE, "category": C.OBJECT_EXISTENCE,
    "celebrity": C.OBJECT_EXISTENCE, "name": C.OBJECT_EXISTENCE,
}
# rank 1: the generic head of most labels
_OBJECT = ("object", "entity", "entities", "item", "thing", "existence", "existent", "exist",
           "presence", "present", "person", "people", "human", "animal", "subject",
           "instance", "element", "clothing", "garment", "vehicle", "food", "plant")
# rank 0: where, in the widest sense: loses to anything more specific ("background_object")
_SCENE = ("scene", "setting", "background", "foreground", "environment", "context", "place",
          "surroundings", "surrounding", "landscape", "venue", "backdrop", "scenery")
# phrases (up to three words) read as one dimension before their words are looked at alone
_PHRASES: dict[tuple[str, ...], tuple[CanonicalType, int]] = {
    ("camera", "angle"): (C.STYLE, 3), ("shot", "scale"): (C.STYLE, 3),
    ("shot", "size"): (C.STYLE, 3), ("shot", "type"): (C.STYLE, 3),
    ("point", "of", "view"): (C.STYLE, 3), ("depth", "of", "field"): (C.STYLE, 3),
    ("time", "of", "day"): (C.SCENE_SETTING, 3),
    ("license", "plate"): (C.TEXT_OCR, 3), ("number", "plate"): (C.TEXT_OCR, 3),
    ("jersey", "number"): (C.TEXT_OCR, 3), ("phone", "number"): (C.TEXT_OCR, 3),
    ("street", "number"): (C.TEXT_OCR, 3), ("brand", "name"): (C.TEXT_OCR, 3),
    ("facial", "expression"): (C.ACTION_POSE, 3), ("body", "language"): (C.ACTION_POSE, 3),
    ("spatial", "relation"): (C.SPATIAL_RELATION, 3),
    ("spatial", "relationship"): (C.SPATIAL_RELATION, 3),
}
_MAX_PHRASE = 3
# ties between dimensions of one rank: the first of these wins
_PRIORITY = (C.COLOR, C.SHAPE, C.MATERIAL, C.SIZE, C.SPATIAL_RELATION, C.TEXT_OCR, C.COUNT,
             C.ACTION_POSE, C.STYLE, C.SCENE_SETTING, C.ATTRIBUTE, C.OBJECT_EXISTENCE, C.OTHER)


def _builtin_words() -> dict[str, tuple[CanonicalType, int]]:
    table: dict[str, tuple[CanonicalType, int]] = {}
    for word in _SCENE:
        table[word] = (C.SCENE_SETTING, 0)
    for word in _OBJECT:
        table[word] = (C.OBJECT_EXISTENCE, 1)
    for word, canonical in _MIDDLE.items():
        table[word] = (canonical, 2)
    for canonical, words in _SPECIFIC.items():
        for word in words:
            table[word] = (canonical, 3)
    return table


BUILTIN_WORDS: Mapping[str, tuple[CanonicalType, int]] = _builtin_words()

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\W_]+")


def normalise_label(label: str) -> str:
    """Lower-case words joined by `_`: `ObjectColor / Error` -> `object_color_error`.

    >>> normalise_label("  Spatial / Relation-Error ")
    'spatial_relation_error'
    """
    spaced = _CAMEL.sub("_", label)
    return "_".join(t for t in _SEPARATORS.split(spaced.lower()) if t)


def _fold(word: str, table: Mapping[str, tuple[CanonicalType, int]]) -> str | None:
    """The table's form of a word: itself, singular, or without a `mis`/`non` prefix."""
    candidates = [word]
    for prefix in ("mis", "non"):
        if word.startswith(prefix) and len(word) > len(prefix) + 2:
            candidates.append(word[len(prefix):])
    for candidate in list(candidates):
        if candidate.endswith("ies") and len(candidate) > 4:
            candidates.append(candidate[:-3] + "y")
        if candidate.endswith("es") and len(candidate) > 3:
            candidates.append(candidate[:-2])
        if candidate.endswith("s") and len(candidate) > 3:
            candidates.append(candidate[:-1])
    return next((c for c in candidates if c in table), None)


class TypeMapper:
    """Maps open-vocabulary error types to canonical types (see the module docstring)."""

    def __init__(self, config: TaxonomyConfig) -> None:
        self._labels: dict[str, CanonicalType] = {
            normalise_label(k): v for k, v in config.synonyms.items()}
        self._words: dict[str, tuple[CanonicalType, int]] = dict(BUILTIN_WORDS)
        self._phrases: dict[tuple[str, ...], tuple[CanonicalType, int]] = dict(_PHRASES)
        for key, canonical in self._labels.items():
            words = tuple(key.split("_"))
            if len(words) == 1:
                self._words[key] = (canonical, CONFIGURED_RANK)
            elif len(words) <= _MAX_PHRASE:
                self._phrases[words] = (canonical, CONFIGURED_RANK)

    def dimensions(self, label: str) -> list[tuple[CanonicalType, int]]:
        """Every dimension the label names, in word order, with its rank."""
        words = normalise_label(label).split("_")
        found: list[tuple[CanonicalType, int]] = []
        position = 0
        while position < len(words):
            for size in range(min(_MAX_PHRASE, len(words) - position), 1, -1):
                phrase = tuple(words[position:position + size])
                if phrase in self._phrases:
                    found.append(self._phrases[phrase])
                    position += size
                    break
            else:
                word = _fold(words[position], self._words) if words[position] else None
                if word is not None:
                    found.append(self._words[word])
                position += 1
        return found

    def canonical(self, label: str | None) -> CanonicalType:
        """The canonical type of one label.

        >>> mapper = TypeMapper(TaxonomyConfig())
        >>> mapper.canonical("object_color_hallucination"), mapper.canonical("NumberOfObjects")
        (<CanonicalType.COLOR: 'color'>, <CanonicalType.COUNT: 'count'>)
        """
        if not label:
            return C.OTHER
        key = normalise_label(label)
        if key in self._labels:
            return self._labels[key]
        found = self.dimensions(label)
        if not found:
            return C.OTHER
        best = max(rank for _, rank in found)
        return min((c for c, rank in found if rank == best), key=_PRIORITY.index)


def keyword_matches(keyword: str, error_type: str, match: str) -> bool:
    """Whether one severity keyword matches an error type (`word_prefix` or `substring`)."""
    if match == "substring":
        return keyword.lower() in error_type.lower()
    needle = normalise_label(keyword)
    if not needle:
        return False
    haystack = "_" + normalise_label(error_type)
    return any(f"_{prefix}{needle}" in haystack for prefix in ("", "mis", "non"))


def rule_severity(error_type: str | None, config: SeverityConfig) -> int:
    """The keyword rule alone: the first matching keyword's severity, else the default.

    >>> rule_severity("spatial_relation_error", SeverityConfig(rule_set="paper"))
    2
    >>> rule_severity("stone_texture_error", SeverityConfig())
    2
    """
    text = error_type or ""
    for keyword, severity in config.rules:
        if keyword_matches(keyword, text, config.match):
            return severity
    return config.default


def severity_of(
    error_type: str | None, judged: int | None, config: SeverityConfig
) -> tuple[int, SeveritySource]:
    """The severity of an error and where it came from.

    >>> severity_of("color_mismatch", None, SeverityConfig())
    (2, <SeveritySource.RULE: 'rule'>)
    >>> severity_of("count_mismatch", None, SeverityConfig())
    (3, <SeveritySource.RULE: 'rule'>)
    """
    if judged is not None and config.judge_severity:
        return judged, SeveritySource.JUDGE
    return rule_severity(error_type, config), SeveritySource.RULE
