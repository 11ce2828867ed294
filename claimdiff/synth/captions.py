"""Captions from claims: what a caption states (`Claims`) is apart from how it says it (`Style`).

`describe` turns a scene graph into the claims of a reference caption: every entity with its
count, size, colour and place, and a random choice of peripheral facts (patterns, parts, the
sign's letter colour, the setting and its background). An edit changes one claim; rendering the
edited claims with the same `Style` changes only the words that carry that claim, and rendering
the same claims with another `Style` gives a paraphrase with no difference in content.

Rendered captions keep their sentences with the keys of the facts each one states, so the gold
spans are verbatim sentences of the caption.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from claimdiff.synth.scene import (
    FLIPS,
    PARTS,
    SETTINGS,
    SIGN,
    Scene,
    holds,
    quadrant_of,
)

T = TypeVar("T")

NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
TEXTURE_ADJ = {"solid": "plain", "striped": "striped", "dotted": "polka-dot",
               "checkered": "checkered"}
TEXTURE_WITH = {"solid": "with no pattern", "striped": "with white stripes",
                "dotted": "covered in white dots", "checkered": "with a white checkered pattern"}
PART_PHRASES = {"roof": "a dark grey roof", "door": "a brown door", "trunk": "a brown trunk",
                "wheels": "black wheels", "handle": "a handle", "points": "five points"}
MEDIUM_SENTENCES = ("The whole picture is a simple flat illustration.",
                    "It is drawn in a simple, flat cartoon style.",
                    "Everything is drawn as a flat, cartoon-like illustration.")
QUADRANT_WORDS = {"top left": "upper left", "top right": "upper right",
                  "bottom left": "lower left", "bottom right": "lower right"}


# --- claims -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where a caption puts an entity: `at` a quadrant, or in a relation to an anchor entity."""

    relation: str  # "at", or a relation of `scene.holds`
    target: str  # the quadrant for "at", else the anchor's key

    def flipped(self) -> Place | None:
        """The opposite place (a false one), or None where there is no clear opposite."""
        if self.relation in FLIPS:
            return Place(FLIPS[self.relation], self.target)
        if self.relation == "at":
            vertical, horizontal = self.target.split()
            return Place("at", f"{'bottom' if vertical == 'top' else 'top'} {horizontal}")
        return None


@dataclass(frozen=True)
class Hedge:
    """A hedged attribute: the caption names two options instead of one value."""

    attribute: str  # "color" or "count"
    options: tuple[str, str] | tuple[int, int]


@dataclass(frozen=True)
class EntityClaim:
    """What a caption says about one entity; None for an attribute it leaves unsaid."""

    key: str
    kind: str
    place: Place
    count: int = 1
    color: str | None = None
    size: str | None = None
    texture: str | None = None
    parts: tuple[str, ...] = ()
    word: str | None = None
    text_color: str | None = None
    hedge: Hedge | None = None

    @property
    def plural(self) -> bool:
        return self.count > 1 or (self.hedge is not None and self.hedge.attribute == "count")


@dataclass(frozen=True)
class SettingClaim:
    setting: str
    named: bool  # whether the setting itself ("in a park") is stated
    details: tuple[int, ...]  # which background regions are described (0 top, 1 bottom)


@dataclass(frozen=True)
class Claims:
    """Everything one caption states, entities in the order the caption mentions them."""

    entities: tuple[EntityClaim, ...]
    setting: SettingClaim | None
    medium: bool = False  # "the picture is a simple flat illustration": true of every image

    def get(self, key: str) -> EntityClaim:
        for claim in self.entities:
            if claim.key == key:
                return claim
        raise KeyError(key)

    def with_entity(self, claim: EntityClaim) -> Claims:
        return replace(self, entities=tuple(claim if c.key == claim.key else c
                                            for c in self.entities))

    def without(self, key: str) -> Claims:
        return replace(self, entities=tuple(c for c in self.entities if c.key != key))

    def inserted(self, claim: EntityClaim, index: int) -> Claims:
        items = list(self.entities)
        items.insert(index, claim)
        return replace(self, entities=tuple(items))

    def anchors(self) -> set[str]:
        """Keys that some other entity's place refers to."""
        return {c.place.target for c in self.entities if c.place.relation != "at"}


def _order(scene: Scene, rng: random.Random) -> list[str]:
    """Main first, the rest shuffled, but an inside-object always after its container."""
    rest = [e.key for e in scene.entities if e.key != scene.main]
    rng.shuffle(rest)
    order = [scene.main]
    pending = rest
    while pending:
        ready = next((k for k in pending if scene.get(k).container in (None, *order)), None)
        if ready is None:
            raise ValueError(f"scene {scene.index}: an object's container is missing")
        order.append(ready)
        pending = [k for k in pending if k != ready]
    return order


def _place(scene: Scene, key: str, earlier: list[str], rng: random.Random) -> Place:
    """A true place for `key`: inside its container, related to an earlier entity, or a quadrant."""
    entity = scene.get(key)
    if entity.container is not None:
        return Place("inside", entity.container)
    options = [Place(relation, anchor)
               for anchor in earlier if scene.get(anchor).container is None
               for relation in ("left_of", "right_of", "above", "below", "next_to")
               if holds(relation, entity.bbox, scene.get(anchor).bbox)]
    if options and rng.random() < 0.65:
        return rng.choice(options)
    return Place("at", quadrant_of(entity.bbox))


def describe(scene: Scene, rng: random.Random) -> Claims:
    """The claims of a true, natural reference caption of `scene`.

    Core facts (entities, counts, sizes, colours, places, words) are always stated; peripheral
    ones are stated at random, so some are left for actors to add as extra correct detail.
    """
    claims: list[EntityClaim] = []
    order = _order(scene, rng)
    for position, key in enumerate(order):
        entity = scene.get(key)
        place = _place(scene, key, order[:position], rng)
        if entity.is_sign:
            claims.append(EntityClaim(
                key=key, kind=SIGN, place=place, word=entity.word,
                text_color=entity.text_color if rng.random() < 0.5 else None))
            continue
        parts = tuple(p for p in PARTS.get(entity.kind, ()) if rng.random() < 0.5)
        claims.append(EntityClaim(
            key=key, kind=entity.kind, place=place, count=entity.count, color=entity.color,
            size=entity.size, texture=entity.texture if rng.random() < 0.7 else None,
            parts=parts))
    # with few entities the setting gets its own sentence, so a reference has three or more
    named = len(order) < 3 or rng.random() < 0.9
    details = tuple(i for i in (0, 1) if rng.random() < 0.45)
    setting = SettingClaim(scene.setting, named, details) if named or details else None
    return Claims(entities=tuple(claims), setting=setting, medium=rng.random() < 0.5)


# --- rendering ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How a caption is worded: every template choice is a pure function of (seed, slot)."""

    seed: int

    def pick(self, slot: str, options: Sequence[T]) -> T:
        return random.Random(f"{self.seed}|{slot}").choice(list(options))


@dataclass(frozen=True)
class Sentence:
    text: str
    keys: frozenset[str]  # the facts it states: an entity key, "<key>.parts", "setting", ...


@dataclass(frozen=True)
class Caption:
    sentences: tuple[Sentence, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    def span(self, key: str) -> str | None:
        """The first sentence that states fact `key`, verbatim."""
        return next((s.text for s in self.sentences if key in s.keys), None)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _clean(text: str) -> str:
    """Tidy punctuation left by optional clauses (a hedge just before the full stop, say)."""
    text = text.replace(",.", ".").replace(", ,", ",")
    while "  " in text:
        text = text.replace("  ", " ")
    return text.strip()


def noun(kind: str, plural: bool) -> str:
    return f"{kind}s" if plural else kind


def _be(plural: bool) -> str:
    return "are" if plural else "is"


def _verb(claim: EntityClaim) -> str:
    stands = claim.kind in ("house", "tree", SIGN)
    if claim.plural:
        return "stand" if stands else "sit"
    return "stands" if stands else "sits"


def _sign_phrase(claim: EntityClaim, style: Style) -> str:
    word = f'"{claim.word}"'
    if claim.text_color is None:
        return style.pick(f"{claim.key}/sign", (
            f"a sign that reads {word}", f"a sign reading {word}",
            f"a sign with the word {word} on it"))
    color = claim.text_color
    return style.pick(f"{claim.key}/sign-color", (
        f"a sign that reads {word} in {color} letters",
        f"a sign with {color} lettering that says {word}"))


def _hedge_words(hedge: Hedge, style: Style, slot: str) -> str:
    first, second = (str(NUMBERS[o]) if isinstance(o, int) else o for o in hedge.options)
    return style.pick(slot, (f"possibly {first} or {second}", f"perhaps {first} or {second}"))


def noun_phrase(claim: EntityClaim, style: Style, *, inline_parts: bool) -> str:
    """"a large striped red house with a dark grey roof", "perhaps two or three small balls"..."""
    if claim.kind == SIGN:
        return _sign_phrase(claim, style)
    hedge = claim.hedge
    if hedge is not None and hedge.attribute == "count":
        quantity = _hedge_words(hedge, style, f"{claim.key}/hedge")
    else:
        quantity = NUMBERS[claim.count] if claim.count > 1 else ""
    words = [claim.size or ""]
    texture_first = style.pick(f"{claim.key}/texture", (True, False))
    if claim.texture is not None and texture_first:
        words.append(TEXTURE_ADJ[claim.texture])
    if hedge is None or hedge.attribute != "color":
        words.append(claim.color or "")
    words.append(noun(claim.kind, claim.plural))
    phrase = " ".join(w for w in words if w)
    if hedge is not None and hedge.attribute == "color":
        phrase += f", {_hedge_words(hedge, style, f'{claim.key}/hedge')},"
    if claim.texture is not None and not texture_first:
        phrase += " " + TEXTURE_WITH[claim.texture]
    if claim.parts and inline_parts:
        phrase += (" each" if claim.plural else "") + " with " + _join(
            [PART_PHRASES[p] for p in claim.parts])
    if quantity:
        return f"{quantity} {phrase}"
    return f"{_article(phrase)} {phrase}"


def _has_tail(claim: EntityClaim, style: Style) -> bool:
    """Whether the noun phrase already ends in a clause (a postfix pattern or a hedge)."""
    texture_last = claim.texture is not None and not style.pick(f"{claim.key}/texture",
                                                                (True, False))
    return texture_last or claim.hedge is not None


def anchor_phrase(claims: Claims, key: str) -> str:
    anchor = claims.get(key)
    return f"the {noun(anchor.kind, anchor.plural)}"


def place_phrase(claim: EntityClaim, claims: Claims, style: Style) -> str:
    place = claim.place
    slot = f"{claim.key}/place"
    if place.relation == "at":
        where = style.pick(slot + "/q", (place.target, QUADRANT_WORDS[place.target]))
        return style.pick(slot, (f"in the {where}", f"at the {where}",
                                 f"in the {where} part of the picture", f"toward the {where}"))
    anchor = anchor_phrase(claims, place.target)
    options = {
        "left_of": (f"to the left of {anchor}", f"on the left of {anchor}"),
        "right_of": (f"to the right of {anchor}", f"on the right of {anchor}"),
        "above": (f"above {anchor}", f"directly above {anchor}"),
        "below": (f"below {anchor}", f"beneath {anchor}"),
        "next_to": (f"next to {anchor}", f"beside {anchor}"),
        "inside": (f"inside {anchor}", f"within {anchor}"),
    }[place.relation]
    return style.pick(slot, options)


def _entity_sentence(claim: EntityClaim, claims: Claims, style: Style, *, first: bool,
                     inline_parts: bool, where: str | None, avoid: int | None
                     ) -> tuple[int, str]:
    """One sentence for `claim` and its template number; template `avoid` is not used again.

    Skipping the previous sentence's template keeps "There is also ... There is also ..." out.
    """
    np = noun_phrase(claim, style, inline_parts=inline_parts)
    place = place_phrase(claim, claims, style)
    be, verb = _be(claim.plural), _verb(claim)
    if where is not None:  # the opening sentence also sets the scene
        templates = [f"{_cap(where)}, {np} {verb} {place}.",
                     f"This picture shows {np} {place}, {where}.",
                     f"Set {where}, the scene shows {np} {place}."]
    elif first:
        templates = [f"This picture shows {np} {place}.", f"The image shows {np} {place}.",
                     f"At first glance, there {be} {np} {place}.", f"{_cap(np)} {verb} {place}.",
                     f"We are looking at {np} {place}."]
    else:
        templates = [f"{_cap(place)}, there {be} {np}.", f"{_cap(np)} {verb} {place}.",
                     f"{_cap(place)} {be} {np}.", f"There {be} also {np} {place}.",
                     f"{_cap(np)} can be seen {place}.", f"{_cap(place)}, one can see {np}."]
    allowed = [i for i in range(len(templates)) if i != avoid]
    index = style.pick(f"{claim.key}/sentence/{'first' if first else 'rest'}", allowed)
    return index, _clean(templates[index])


def _parts_sentence(claim: EntityClaim, style: Style) -> str:
    parts = _join([PART_PHRASES[p] for p in claim.parts])
    if claim.plural:
        return style.pick(f"{claim.key}/parts", (
            f"Each {claim.kind} has {parts}.", f"The {claim.kind}s each have {parts}."))
    return style.pick(f"{claim.key}/parts", (
        f"The {claim.kind} has {parts}.", f"The {claim.kind} features {parts}."))


def _setting_where(claim: SettingClaim) -> str:
    setting = SETTINGS[claim.setting]
    if not claim.details:
        return setting.where
    return f"{setting.where} with {_join([setting.details[i] for i in claim.details])}"


def _setting_keys(claim: SettingClaim) -> frozenset[str]:
    keys = {f"background.{i}" for i in claim.details}
    if claim.named:
        keys.add("setting")
    return frozenset(keys)


def _setting_sentence(claim: SettingClaim, style: Style) -> str:
    setting = SETTINGS[claim.setting]
    if not claim.named:
        details = _join([setting.details[i] for i in claim.details])
        return style.pick("setting/details", (f"The background shows {details}.",
                                              f"In the background one can see {details}."))
    where = _setting_where(claim)
    rest = where.removeprefix(setting.where)
    inout = "indoor" if setting.indoor else "outdoor"
    return style.pick("setting/named", (
        f"The scene is set {where}.", f"All of this takes place {where}.",
        f"The setting is {setting.name}{rest}.", f"This is an {inout} scene {where}."))


def render_caption(claims: Claims, style: Style) -> Caption:
    """The caption that states exactly `claims`, worded by `style`."""
    setting = claims.setting
    mode = style.pick("setting/position", ("open", "first", "last"))
    if setting is None or not setting.named or len(claims.entities) < 3:
        # an opening clause needs a named setting ("in a park, ..."); with few entities the
        # setting keeps a sentence of its own so the caption does not get too short
        mode = style.pick("setting/alone", ("first", "last"))
    sentences: list[Sentence] = []
    previous: int | None = None
    for position, claim in enumerate(claims.entities):
        merged = setting if position == 0 and mode == "open" else None
        # a trailing "with ..." after a pattern or a hedge reads badly: parts go in a sentence
        inline = style.pick(f"{claim.key}/parts-inline", (True, False)) and not _has_tail(
            claim, style)
        keys = {claim.key} | ({f"{claim.key}.parts"} if inline else set())
        if merged is not None:
            keys |= _setting_keys(merged)
        template, text = _entity_sentence(
            claim, claims, style, first=position == 0, inline_parts=inline,
            where=_setting_where(merged) if merged is not None else None,
            avoid=previous if position > 1 else None)
        previous = template
        sentences.append(Sentence(text, frozenset(keys)))
        if claim.parts and not inline:
            sentences.append(Sentence(_parts_sentence(claim, style),
                                      frozenset({f"{claim.key}.parts"})))
    if setting is not None and mode != "open":
        sentence = Sentence(_setting_sentence(setting, style), _setting_keys(setting))
        sentences.insert(0 if mode == "first" else len(sentences), sentence)
    if claims.medium:
        sentence = Sentence(style.pick("medium", MEDIUM_SENTENCES), frozenset({"medium"}))
        sentences.insert(0 if style.pick("medium/first", (True, False, False)) else
                         len(sentences), sentence)
    return Caption(tuple(sentences))


# --- atomic claims, as the gold states them -----------------------------------------------------


def plain_noun_phrase(claim: EntityClaim) -> str:
    """The entity's core description with fixed wording: for atomic gold claims."""
    return noun_phrase(replace(claim, parts=(), hedge=None), Style(0), inline_parts=False)


def place_text(claim: EntityClaim, claims: Claims) -> str:
    place = claim.place
    if place.relation == "at":
        return f"in the {place.target} of the picture"
    relation = {"left_of": "to the left of", "right_of": "to the right of", "above": "above",
                "below": "below", "next_to": "next to", "inside": "inside"}[place.relation]
    return f"{relation} {anchor_phrase(claims, place.target)}"
