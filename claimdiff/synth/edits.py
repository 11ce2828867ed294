"""Controlled edits: one changed claim per actor caption, recorded as one gold difference.

Every edit starts from the true claims of the reference (`captions.describe`) and changes exactly
one fact on one side: the actor's (a hallucination, a contradiction, a hedge, an omission, an extra
correct detail) or the reference's (an error or a fabricated object the actor rightly leaves out),
or both sides differently (`both_wrong`). The changed fact is kept as a `Fact` (its value in the
image, and what each caption says), which the tests check against the scene graph and the pixels.

Severity follows salience (the rule, applied by `salience`):

- 3: anything fabricated (an object that is not there), every count, every spatial relation or
  position, and the existence, colour and size of the main subject (`Scene.main`: the only large
  group, which every reference opens with and which covers the most pixels of any object group,
  see `scene`);
- 2: the existence, colour and size of a secondary (small) object, the sign's text, the setting;
- 1: patterns (plain/striped/dotted/checkered: the scene's material-like texture, so
  `wrong_material` edits the pattern and its error types `texture_*` map to `material`), object
  parts (roof, door, trunk, wheels, handle, points), the colour of the sign's letters,
  background details (sky, grass, wall, floor), the style of the picture (a flat illustration);
- a hedge ("possibly red or blue" where the image is clear) is one less than the hedged fact,
  at least 1: it is an error, but it includes the true value.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from claimdiff.rewards.outcomes import difference_kind, outcomes_of
from claimdiff.schemas.judge import ErrorLabel, JudgedDifference, Judgment
from claimdiff.schemas.rows import CanonicalType, Outcome
from claimdiff.synth.captions import (
    NUMBERS,
    PART_PHRASES,
    Caption,
    Claims,
    EntityClaim,
    Hedge,
    Place,
    SettingClaim,
    noun,
    place_text,
    plain_noun_phrase,
)
from claimdiff.synth.scene import (
    COLORS,
    PARTS,
    QUADRANTS,
    SETTINGS,
    SIGN,
    SIZES,
    TEXTURES,
    WORDS,
    Scene,
    compatible_kinds,
    distinct_colors,
)

C = CanonicalType

# edit kind -> the outcomes its gold difference must produce (docs/architecture.md: outcomes)
_HALLUCINATION = (Outcome.ACTOR_HALLUCINATION,)
INTENDED_OUTCOMES: dict[str, tuple[Outcome, ...]] = {
    "hallucinated_object": _HALLUCINATION,
    "wrong_count": _HALLUCINATION,
    "wrong_color": _HALLUCINATION,
    "wrong_size": _HALLUCINATION,
    "wrong_material": _HALLUCINATION,
    "wrong_relation": _HALLUCINATION,
    "wrong_text": _HALLUCINATION,
    "wrong_setting": _HALLUCINATION,
    "hedge": _HALLUCINATION,
    "omit_salient": (Outcome.ACTOR_OMISSION,),
    "omit_peripheral": (Outcome.ACTOR_OMISSION,),
    "extra_detail": (Outcome.ACTOR_EXTRA_CORRECT,),
    "reference_error": (Outcome.REFERENCE_ERROR,),
    "reference_hallucination": (Outcome.REFERENCE_HALLUCINATION,),
    "both_wrong": (Outcome.ACTOR_HALLUCINATION, Outcome.REFERENCE_ERROR),
}
EDIT_KINDS = tuple(INTENDED_OUTCOMES)

# attribute -> (error type of a wrong claim, error type of an omission, canonical type)
TYPES: dict[str, tuple[str, str, CanonicalType]] = {
    "existence": ("object_hallucination", "object_omission", C.OBJECT_EXISTENCE),
    "count": ("count_mismatch", "count_omission", C.COUNT),
    "color": ("color_mismatch", "color_omission", C.COLOR),
    "size": ("size_mismatch", "size_omission", C.SIZE),
    "texture": ("texture_mismatch", "texture_omission", C.MATERIAL),
    "place": ("spatial_relation_error", "spatial_relation_omission", C.SPATIAL_RELATION),
    "word": ("text_error", "text_omission", C.TEXT_OCR),
    "text_color": ("color_mismatch", "color_omission", C.COLOR),
    "part": ("object_part_hallucination", "object_part_omission", C.OBJECT_EXISTENCE),
    "setting": ("scene_error", "scene_omission", C.SCENE_SETTING),
    "background": ("background_error", "background_omission", C.SCENE_SETTING),
    "style": ("style_error", "style_omission", C.STYLE),
}
TEXTURE_PREDICATES = {"solid": "plain, with no pattern", "striped": "striped",
                      "dotted": "dotted", "checkered": "checkered"}
MEDIUM_STATEMENT = "The picture is a simple flat illustration."
SALIENCE = {"existence": 2, "count": 3, "place": 3, "color": 2, "size": 2, "word": 2,
            "setting": 2, "texture": 1, "part": 1, "text_color": 1, "background": 1, "style": 1}


def salience(attribute: str, *, main: bool = False, fabricated: bool = False) -> int:
    """Severity of an error about `attribute` (the rule in the module docstring)."""
    if fabricated or (main and attribute in ("existence", "color", "size")):
        return 3
    return SALIENCE[attribute]


@dataclass(frozen=True)
class Fact:
    """The one fact an edit changes: its value in the image and what each caption says.

    `actor`/`reference` are None where that caption is silent. For `existence`, values are
    True/False; for `place`, a `captions.Place`; for a hedge, the actor's value is the pair of
    options it names.
    """

    subject: str  # entity key, "x0" for a fabricated object, or "setting"
    attribute: str
    truth: Any
    actor: Any
    reference: Any
    kind: str | None = None
    part: str | None = None
    hedged: bool = False


@dataclass(frozen=True)
class Edit:
    """One controlled edit: the claims of both captions and the gold difference between them."""

    kind: str
    reference: Claims
    actor: Claims
    fact: Fact
    span_key: str  # the caption facts key (`captions.Sentence.keys`) the spans come from
    aspect: str
    actor_claim: str | None
    reference_claim: str | None
    judgment: Judgment
    actor_error: ErrorLabel | None = None
    reference_error: ErrorLabel | None = None
    canonical: CanonicalType | None = None  # what the error types must map to

    @property
    def severity(self) -> int:
        """The severity of the error the edit injects (0 where it injects none)."""
        return max((e.severity or 0 for e in (self.actor_error, self.reference_error) if e),
                   default=0)

    @property
    def overall(self) -> str:
        if self.actor_error and self.reference_error:
            return "tie"
        return "reference" if self.actor_error else "actor"

    def outcomes(self) -> tuple[Outcome, ...]:
        return outcomes_of(difference_kind(self.actor_claim, self.reference_claim),
                           self.judgment)

    def difference(self, actor: Caption, reference: Caption) -> JudgedDifference:
        """The gold difference, with the verbatim sentences of both captions as spans."""
        return JudgedDifference(
            aspect=self.aspect, actor_claim=self.actor_claim, reference_claim=self.reference_claim,
            actor_span=actor.span(self.span_key) if self.actor_claim else None,
            reference_span=reference.span(self.span_key) if self.reference_claim else None,
            judgment=self.judgment, actor_error=self.actor_error,
            reference_error=self.reference_error, confidence=1.0)


# --- words of atomic claims ---------------------------------------------------------------------


def _the(claim: EntityClaim) -> str:
    return f"the {noun(claim.kind, claim.plural)}"


def _value_words(attribute: str, value: Any, claims: Claims, claim: EntityClaim | None) -> str:
    if attribute == "count":
        return NUMBERS[value]
    if attribute == "texture":
        return TEXTURE_PREDICATES[value]
    if attribute == "place" and claim is not None:
        return place_text(replace(claim, place=value), claims)
    if attribute == "word":
        return f'"{value}"'
    if attribute == "setting":
        return SETTINGS[value].name
    return str(value)


def statement(claim: EntityClaim, claims: Claims, attribute: str, part: str | None = None) -> str:
    """An atomic, self-contained statement of one attribute of `claim`, as `claims` word it."""
    the, be = _the(claim), "are" if claim.plural else "is"
    hedge = claim.hedge
    if hedge is not None and hedge.attribute == attribute:
        first, second = (_value_words(attribute, o, claims, claim) for o in hedge.options)
        if attribute == "count":
            return f"There are perhaps {first} or {second} {claim.kind}s."
        return f"{the.capitalize()} {be} possibly {first} or {second}."
    texts = {
        "existence": lambda: f"There {be} {plain_noun_phrase(claim)} {place_text(claim, claims)}.",
        "count": lambda: f"There {be} {NUMBERS[claim.count]} {noun(claim.kind, claim.plural)}.",
        "color": lambda: f"{the.capitalize()} {be} {claim.color}.",
        "size": lambda: f"{the.capitalize()} {be} {claim.size}.",
        "texture": lambda: f"{the.capitalize()} {be} {TEXTURE_PREDICATES[claim.texture or '']}.",
        "place": lambda: f"{the.capitalize()} {be} {place_text(claim, claims)}.",
        "word": lambda: f'The sign reads "{claim.word}".',
        "text_color": lambda: f"The letters on the sign are {claim.text_color}.",
        "part": lambda: (f"Each {claim.kind} has" if claim.plural else f"The {claim.kind} has")
        + f" {PART_PHRASES[part or '']}.",
    }
    return texts[attribute]()


def setting_statement(setting: str) -> str:
    return f"The scene is set {SETTINGS[setting].where}."


def background_statement(setting: str, region: int) -> str:
    return f"The background shows {SETTINGS[setting].details[region]}."


def aspect(claim: EntityClaim, attribute: str, part: str | None = None) -> str:
    the = _the(claim)
    return {
        "existence": f"presence of {the}",
        "count": f"number of {claim.kind}s",
        "color": f"colour of {the}",
        "size": f"size of {the}",
        "texture": f"pattern of {the}",
        "place": f"position of {the}",
        "word": "text on the sign",
        "text_color": "colour of the letters on the sign",
        "part": f"{part} of {the}",
    }[attribute]


def _error(attribute: str, detail: str, severity: int, *, omission: bool = False,
           hedge: bool = False) -> ErrorLabel:
    wrong, omitted, _ = TYPES[attribute]
    label = f"{attribute}_hedging" if hedge else omitted if omission else wrong
    return ErrorLabel(type=label, detail=detail[:300], severity=cast("Literal[1, 2, 3]", severity))


# --- choosing wrong values ----------------------------------------------------------------------


def _near_miss(word: str, rng: random.Random) -> str:
    """A word a careless reader might see instead: one letter changed, or another sign word."""
    if rng.random() < 0.5:
        return rng.choice([w for w in WORDS if w != word])
    position = rng.randrange(len(word))
    letter = rng.choice([c for c in string.ascii_uppercase if c != word[position]])
    return word[:position] + letter + word[position + 1:]


def wrong_values(claim: EntityClaim, attribute: str, rng: random.Random) -> list[Any]:
    """False values of `attribute` for the entity of `claim` (which states the truth)."""
    if attribute == "count":
        return [c for c in (claim.count - 1, claim.count + 1, claim.count + 2) if 1 <= c <= 6]
    if attribute == "color":
        return distinct_colors(claim.color or "", COLORS)
    if attribute == "size":
        return [s for s in SIZES if s != claim.size]
    if attribute == "texture":
        return [t for t in TEXTURES if t != claim.texture]
    if attribute == "place":
        flipped = claim.place.flipped()
        return [flipped] if flipped else []
    if attribute == "word":
        return [_near_miss(claim.word or "", rng)]
    raise ValueError(f"no wrong values for {attribute!r}")


# --- edit builders ------------------------------------------------------------------------------

Builder = Callable[[Scene, Claims, random.Random], Edit | None]


def _with(claim: EntityClaim, attribute: str, value: Any) -> EntityClaim:
    changes: dict[str, Any] = {attribute: value}
    return replace(claim, **changes)


def _groups(scene: Scene, claims: Claims) -> list[EntityClaim]:
    return [c for c in claims.entities if c.kind != SIGN]


def _conflict(kind: str, scene: Scene, truth: Claims, key: str, attribute: str, *,
              actor: Any, reference: Any) -> Edit:
    """Actor and reference state `attribute` of `key` differently; at least one is wrong."""
    claim = truth.get(key)
    value = getattr(claim, attribute)
    actor_claims = truth.with_entity(_with(claim, attribute, actor))
    reference_claims = truth.with_entity(_with(claim, attribute, reference))
    severity = salience(attribute, main=key == scene.main)
    in_image = _lower(statement(claim, truth, attribute))

    def error(wrong: Any, claims: Claims) -> ErrorLabel | None:
        if wrong == value:
            return None
        said = _value_words(attribute, wrong, claims, claims.get(key))
        return _error(attribute, f"in the image {in_image}; the caption says {said}", severity)

    actor_error, reference_error = error(actor, actor_claims), error(reference, reference_claims)
    judgment = (Judgment.BOTH_WRONG if actor_error and reference_error
                else Judgment.REFERENCE if actor_error else Judgment.ACTOR)
    return Edit(
        kind=kind, reference=reference_claims, actor=actor_claims,
        fact=Fact(key, attribute, value, actor, reference, kind=claim.kind), span_key=key,
        aspect=aspect(claim, attribute),
        actor_claim=statement(actor_claims.get(key), actor_claims, attribute),
        reference_claim=statement(reference_claims.get(key), reference_claims, attribute),
        judgment=judgment, actor_error=actor_error, reference_error=reference_error,
        canonical=TYPES[attribute][2])


def _actor_wrong(kind: str, attribute: str, *, groups_only: bool = True) -> Builder:
    def build(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
        pool = _groups(scene, truth) if groups_only else list(truth.entities)
        candidates = [c for c in pool if getattr(c, attribute) is not None
                      and wrong_values(c, attribute, rng)]
        if not candidates:
            return None
        claim = rng.choice(candidates)
        wrong = rng.choice(wrong_values(claim, attribute, rng))
        return _conflict(kind, scene, truth, claim.key, attribute, actor=wrong,
                         reference=getattr(claim, attribute))
    return build


def wrong_setting(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    # Only where the reference names the setting without background details: a new setting
    # next to "green grass" would contradict itself and make a second difference.
    setting = truth.setting
    if setting is None or not setting.named or setting.details:
        return None
    wrong = rng.choice([s for s in sorted(SETTINGS) if s != setting.setting])
    actor = replace(truth, setting=replace(setting, setting=wrong))
    detail = (f"in the image the scene is set {SETTINGS[setting.setting].where}; the caption "
              f"says {SETTINGS[wrong].where}")
    return Edit(
        kind="wrong_setting", reference=truth, actor=actor,
        fact=Fact("setting", "setting", setting.setting, wrong, setting.setting),
        span_key="setting", aspect="setting of the scene", actor_claim=setting_statement(wrong),
        reference_claim=setting_statement(setting.setting), judgment=Judgment.REFERENCE,
        actor_error=_error("setting", detail, salience("setting")),
        canonical=C.SCENE_SETTING)


def _fabricated(scene: Scene, truth: Claims, rng: random.Random, *, on_actor: bool) -> Edit | None:
    kinds = compatible_kinds(scene.kinds)
    if not kinds:
        return None
    kind = rng.choice(kinds)
    palette = [c for c in COLORS if c not in SETTINGS[scene.setting].avoid]
    top = [i for i, c in enumerate(truth.entities) if scene.get(c.key).container is None]
    if rng.random() < 0.5:
        anchor = rng.choice(top)
        place, first = Place("next_to", truth.entities[anchor].key), anchor + 1
    else:
        place, first = Place("at", rng.choice(QUADRANTS)), 1
    claim = EntityClaim(key="x0", kind=kind, place=place, count=1 if rng.random() < 0.7 else 2,
                        color=rng.choice(palette), size=rng.choice(sorted(SIZES)),
                        texture=rng.choice(TEXTURES) if rng.random() < 0.5 else None)
    with_it = truth.inserted(claim, rng.randint(first, len(truth.entities)))
    error = _error("existence", f"there is no {kind} in the image", 3)
    said = statement(claim, with_it, "existence")
    return Edit(
        kind="hallucinated_object" if on_actor else "reference_hallucination",
        reference=truth if on_actor else with_it, actor=with_it if on_actor else truth,
        fact=Fact("x0", "existence", False, True if on_actor else None,
                  None if on_actor else True, kind=kind),
        span_key="x0", aspect=f"presence of {'a ' + kind if claim.count == 1 else kind + 's'}",
        actor_claim=said if on_actor else None, reference_claim=None if on_actor else said,
        judgment=Judgment.REFERENCE if on_actor else Judgment.ACTOR,
        actor_error=error if on_actor else None, reference_error=None if on_actor else error,
        canonical=C.OBJECT_EXISTENCE)


def hallucinated_object(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    return _fabricated(scene, truth, rng, on_actor=True)


def reference_hallucination(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    return _fabricated(scene, truth, rng, on_actor=False)


def hedge(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    claim = rng.choice(_groups(scene, truth))
    attribute = rng.choice(("color", "count"))
    if attribute == "color":
        options: tuple[Any, Any] = (claim.color, rng.choice(distinct_colors(claim.color or "")))
        if rng.random() < 0.5:
            options = (options[1], options[0])
    else:
        low = claim.count - 1 if claim.count > 1 and rng.random() < 0.5 else claim.count
        options = (low, low + 1)
    actor = truth.with_entity(replace(claim, hedge=Hedge(attribute, options)))
    in_image = _lower(statement(claim, truth, attribute))
    severity = max(1, salience(attribute, main=claim.key == scene.main) - 1)
    return Edit(
        kind="hedge", reference=truth, actor=actor,
        fact=Fact(claim.key, attribute, getattr(claim, attribute), options,
                  getattr(claim, attribute), kind=claim.kind, hedged=True),
        span_key=claim.key, aspect=aspect(claim, attribute),
        actor_claim=statement(actor.get(claim.key), actor, attribute),
        reference_claim=statement(claim, truth, attribute), judgment=Judgment.REFERENCE,
        actor_error=_error(attribute, f"the image clearly shows that {in_image}; the caption "
                           "hedges between two options", severity, hedge=True),
        canonical=TYPES[attribute][2])


def reference_error(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    attribute = rng.choice(("count", "color", "size", "place", "word"))
    # a sign has a word and a place; groups have counts, colours and sizes
    pool = [c for c in truth.entities
            if (c.kind == SIGN) == (attribute == "word") or attribute == "place"]
    pool = [c for c in pool
            if getattr(c, attribute) is not None and wrong_values(c, attribute, rng)]
    if not pool:
        return None
    claim = rng.choice(pool)
    wrong = rng.choice(wrong_values(claim, attribute, rng))
    return _conflict("reference_error", scene, truth, claim.key, attribute,
                     actor=getattr(claim, attribute), reference=wrong)


def both_wrong(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    attribute = rng.choice(("count", "color"))
    claim = rng.choice(_groups(scene, truth))
    wrong = wrong_values(claim, attribute, rng)
    if len(wrong) < 2:
        return None
    actor, reference = rng.sample(wrong, 2)
    return _conflict("both_wrong", scene, truth, claim.key, attribute, actor=actor,
                     reference=reference)


# --- omissions and extra details ----------------------------------------------------------------


@dataclass(frozen=True)
class _Peripheral:
    """A peripheral fact a caption may state or not, with the claims that add or drop it."""

    fact: Fact
    span_key: str
    aspect: str
    with_it: Claims
    without_it: Claims
    said: str


def _setting_claim(scene: Scene, claims: Claims, *, named: bool | None = None,
                   details: tuple[int, ...] | None = None) -> SettingClaim | None:
    old = claims.setting or SettingClaim(scene.setting, False, ())
    new = SettingClaim(scene.setting, old.named if named is None else named,
                       old.details if details is None else tuple(sorted(details)))
    return new if new.named or new.details else None


def _entity_peripherals(scene: Scene, truth: Claims, claim: EntityClaim) -> list[_Peripheral]:
    entity = scene.get(claim.key)
    found: list[_Peripheral] = []
    for attribute, value, empty in (("texture", entity.texture, None),
                                    ("text_color", entity.text_color, None)):
        if value is None:
            continue
        full = _with(claim, attribute, value)
        found.append(_Peripheral(
            Fact(claim.key, attribute, value, None, None, kind=claim.kind), claim.key,
            aspect(full, attribute), truth.with_entity(full),
            truth.with_entity(_with(claim, attribute, empty)),
            statement(full, truth, attribute)))
    for part in PARTS.get(entity.kind, ()):
        full = replace(claim, parts=tuple(p for p in PARTS[entity.kind]
                                          if p in claim.parts or p == part))
        bare = replace(claim, parts=tuple(p for p in claim.parts if p != part))
        found.append(_Peripheral(
            Fact(claim.key, "part", True, None, None, kind=claim.kind, part=part),
            f"{claim.key}.parts", aspect(full, "part", part), truth.with_entity(full),
            truth.with_entity(bare), statement(full, truth, "part", part)))
    return found


def _peripherals(scene: Scene, truth: Claims) -> list[_Peripheral]:
    """Every peripheral fact of the scene, with and without it in the caption."""
    found = [p for claim in truth.entities for p in _entity_peripherals(scene, truth, claim)]
    details = truth.setting.details if truth.setting else ()
    for region in (0, 1):
        found.append(_Peripheral(
            Fact("setting", "background", region, None, None), f"background.{region}",
            _region_aspect(scene, region), replace(truth, setting=_setting_claim(
                scene, truth, details=(*[d for d in details if d != region], region))),
            replace(truth, setting=_setting_claim(
                scene, truth, details=tuple(d for d in details if d != region))),
            background_statement(scene.setting, region)))
    found.append(_Peripheral(
        Fact("image", "style", True, None, None), "medium", "style of the picture",
        replace(truth, medium=True), replace(truth, medium=False), MEDIUM_STATEMENT))
    return found


def _region_aspect(scene: Scene, region: int) -> str:
    indoor = SETTINGS[scene.setting].indoor
    return ("the wall" if indoor else "the sky") if region == 0 else (
        "the floor" if indoor else "the ground")


def _stated(claims: Claims, peripheral: _Peripheral) -> bool:
    return claims == peripheral.with_it


def omit_peripheral(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    stated = [p for p in _peripherals(scene, truth) if _stated(truth, p)]
    if not stated:
        return None
    p = rng.choice(stated)
    fact = replace(p.fact, reference=p.fact.truth)
    return Edit(
        kind="omit_peripheral", reference=truth, actor=p.without_it, fact=fact,
        span_key=p.span_key, aspect=p.aspect, actor_claim=None, reference_claim=p.said,
        judgment=Judgment.REFERENCE,
        actor_error=_error(fact.attribute, f"the caption leaves out that {_lower(p.said)}",
                           salience(fact.attribute), omission=True),
        canonical=TYPES[fact.attribute][2])


def extra_detail(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    unstated = [p for p in _peripherals(scene, truth) if not _stated(truth, p)]
    if truth.setting is None or not truth.setting.named:
        named = replace(truth, setting=_setting_claim(scene, truth, named=True))
        unstated.append(_Peripheral(
            Fact("setting", "setting", scene.setting, None, None), "setting",
            "setting of the scene", named, truth, setting_statement(scene.setting)))
    if not unstated:
        return None
    p = rng.choice(unstated)
    # The reference is only incomplete here, not wrong: neither side gets an error.
    return Edit(
        kind="extra_detail", reference=truth, actor=p.with_it,
        fact=replace(p.fact, actor=p.fact.truth), span_key=p.span_key, aspect=p.aspect,
        actor_claim=p.said, reference_claim=None, judgment=Judgment.ACTOR)


def omit_salient(scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    """The actor leaves out a whole object (one no other sentence refers to) or the setting."""
    anchors = truth.anchors()
    options: list[str] = [c.key for c in truth.entities if c.key not in anchors]
    if truth.setting is not None and truth.setting.named:
        options.append("setting")
    if not options:
        return None
    key = rng.choice(options)
    if key == "setting":
        name = SETTINGS[scene.setting].name
        return Edit(
            kind="omit_salient", reference=truth,
            actor=replace(truth, setting=_setting_claim(scene, truth, named=False)),
            fact=Fact("setting", "setting", scene.setting, None, scene.setting),
            span_key="setting", aspect="setting of the scene", actor_claim=None,
            reference_claim=setting_statement(scene.setting), judgment=Judgment.REFERENCE,
            actor_error=_error("setting", f"the caption never says the scene is {name}",
                               salience("setting"), omission=True),
            canonical=C.SCENE_SETTING)
    claim = truth.get(key)
    said = statement(claim, truth, "existence")
    is_sign = claim.kind == SIGN
    error = _error("word" if is_sign else "existence", f"the caption leaves out {_the(claim)}",
                   salience("existence", main=key == scene.main), omission=True)
    return Edit(
        kind="omit_salient", reference=truth, actor=truth.without(key),
        fact=Fact(key, "existence", True, None, True, kind=claim.kind), span_key=key,
        aspect=aspect(claim, "existence"), actor_claim=None, reference_claim=said,
        judgment=Judgment.REFERENCE, actor_error=error,
        canonical=C.TEXT_OCR if is_sign else C.OBJECT_EXISTENCE)


def _lower(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:].rstrip(".")


BUILDERS: dict[str, Builder] = {
    "hallucinated_object": hallucinated_object,
    "wrong_count": _actor_wrong("wrong_count", "count"),
    "wrong_color": _actor_wrong("wrong_color", "color"),
    "wrong_size": _actor_wrong("wrong_size", "size"),
    "wrong_material": _actor_wrong("wrong_material", "texture"),
    "wrong_relation": _actor_wrong("wrong_relation", "place", groups_only=False),
    "wrong_text": _actor_wrong("wrong_text", "word", groups_only=False),
    "wrong_setting": wrong_setting,
    "hedge": hedge,
    "omit_salient": omit_salient,
    "omit_peripheral": omit_peripheral,
    "extra_detail": extra_detail,
    "reference_error": reference_error,
    "reference_hallucination": reference_hallucination,
    "both_wrong": both_wrong,
}


def _checked(edit: Edit) -> Edit:
    """`edit`, after making sure its gold gives the outcomes its kind stands for.

    Raises otherwise: a bug here would silently mislabel the whole diagnostic set.
    """
    if edit.outcomes() != INTENDED_OUTCOMES[edit.kind]:
        raise RuntimeError(f"edit {edit.kind} gives outcomes {edit.outcomes()}, "
                           f"not {INTENDED_OUTCOMES[edit.kind]}")
    return edit


def clean_against(edit: Edit, scene: Scene, truth: Claims) -> Edit | None:
    """The true caption judged against `edit`'s corrupted reference, where that is a new check.

    An edit that corrupts the reference makes a new (image, reference) sample. Where it also
    corrupts the actor (`both_wrong`), the true caption under the same wrong reference is the
    cleaner caption the reward ordering compares it with: a `reference_error` on the same fact
    (the actor states the truth, the reference the wrong value). Where the actor is left true
    (`reference_error`, `reference_hallucination`) the edited caption already is that clean
    caption, so None: a second copy would form no ordering pair (equal actor errors) and only
    count the reference's error twice.
    """
    if edit.reference == truth or edit.actor == truth:
        return None
    if edit.actor_claim is None or edit.reference_claim is None:
        raise ValueError(f"edit {edit.kind}: only a conflict can corrupt both captions")
    fact = edit.fact
    clean = _checked(_conflict("reference_error", scene, truth, fact.subject, fact.attribute,
                               actor=fact.truth, reference=fact.reference))
    if clean.reference != edit.reference:
        raise RuntimeError(f"edit {edit.kind}: the clean caption's gold is against another "
                           "reference")
    return clean


def build_edit(kind: str, scene: Scene, truth: Claims, rng: random.Random) -> Edit | None:
    """Edit `kind` applied to the true claims, or None where the scene does not allow it.

    Raises where the gold difference would not give the outcome the kind stands for (`_checked`).
    """
    edit = BUILDERS[kind](scene, truth, rng)
    return None if edit is None else _checked(edit)
