"""Scene graphs: what a synthetic image holds, where, and how each thing looks.

A scene has a setting (the background), two or three groups of identical objects, optionally a
small object inside the main group's square or circle, and optionally a sign with a word on it.

The main group (`Scene.main`, the first group, which every reference opens with) is the primary
subject, and errors about it weigh more (`edits`); so it must also be the primary subject in the
pixels. It is the only large group, every other group is small, and each other group covers at
most `MAIN_AREA_SHARE` of the pixels the main group shows (after any object drawn inside it),
by the renderer's own masks (`shapes.covered_area`). The sign is no group: its board is sized to
hold its word legibly and can cover more pixels than a slim main group (a star, say).

Each object has a pattern (`TEXTURES`: plain, striped, dotted, checkered), the scene's
material-like texture: flat shapes have no wood or metal, so the surface pattern stands in for
what an object is made of (error types `texture_*`, canonical type `material`). The canvas
is split into a 2x2 grid of cells; every top-level entity owns one cell and stays inside its
cell's band, so that:

- two entities in the same row always overlap vertically and are strictly left/right of each
  other, and two in the same column overlap horizontally and are strictly above/below;
- the quadrant of an entity (top left, ...) is the quadrant of its cell;
- an inside-object lies wholly within its container's box.

Relations are nevertheless never assumed from the layout: `holds` decides them from the boxes,
and captions state only relations that `holds` confirms.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from claimdiff.synth.shapes import covered_area

RGB = tuple[int, int, int]

CANVAS = 256
# Object colours. Exact RGB values are unique on the canvas (no background, part, outline or
# pattern colour repeats one), so a pixel test can find an object's colour exactly.
COLORS: dict[str, RGB] = {
    "red": (215, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 210, 30),
    "green": (40, 160, 60),
    "blue": (40, 90, 215),
    "purple": (135, 60, 175),
    "pink": (240, 130, 185),
}
# Pairs a viewer (or a judge) could mistake for each other: never used as a "wrong" colour for
# the other, so every colour error in the gold is unambiguous.
CONFUSABLE_COLORS = frozenset(
    frozenset(pair)
    for pair in (("red", "orange"), ("red", "pink"), ("orange", "yellow"), ("purple", "pink"),
                 ("purple", "blue"))
)
KINDS = ("circle", "square", "triangle", "star", "house", "tree", "car", "ball", "cup")
# A ball and a circle look alike when drawn flat: never both in a scene, never one hallucinated
# next to the other.
CONFUSABLE_KINDS = frozenset({frozenset(("circle", "ball"))})
CONTAINERS = ("square", "circle")
SIGN = "sign"
SIZES: dict[str, int] = {"small": 26, "large": 58}
# The material-like texture of an object (see the module docstring); "solid" is plain.
TEXTURES = ("solid", "striped", "dotted", "checkered")
# Another group covers at most this share of the main group's visible pixels: the main group is
# the largest by a clear margin, not by a few pixels.
MAIN_AREA_SHARE = 0.75
MAX_COUNT = 4  # objects in a small group (four small ones fill a cell's width)
# Parts each kind is drawn with; a caption may mention them (peripheral details).
PARTS: dict[str, tuple[str, ...]] = {
    "house": ("roof", "door"),
    "tree": ("trunk",),
    "car": ("wheels",),
    "cup": ("handle",),
    "star": ("points",),
}
WORDS = ("OPEN", "STOP", "EXIT", "SALE", "CAFE", "SHOP", "PARK", "TAXI", "BUS", "ZOO", "FOOD",
         "HOTEL", "BAKERY", "BOOKS", "PIZZA", "MILK", "GYM", "BANK", "FARM", "POST")
TEXT_COLORS: dict[str, RGB] = {"black": (0, 0, 0), "red": (190, 20, 20), "blue": (20, 40, 160)}
# Pillow's bitmap default font is monospaced, 6x11 pixels a glyph; signs draw it at 2x.
GLYPH_W, GLYPH_H, TEXT_SCALE = 6, 11, 2
SIGN_PAD_X, SIGN_PAD_Y, SIGN_POST = 6, 5, 18
GAP = 4  # pixels between the members of one group
NEXT_TO_GAP = 48  # "next to": left/right of each other with at most this gap
# Cell bands: columns [x0, x1) and rows [y0, y1). Entities never leave their band.
COLUMNS = ((4, 124), (132, 252))
ROWS = ((30, 140), (146, 250))
JITTER = 6  # small enough that same-row (same-column) silhouettes always overlap


@dataclass(frozen=True)
class Setting:
    key: str
    name: str  # "a park"
    where: str  # "in a park"
    indoor: bool
    top: RGB  # sky or wall
    bottom: RGB  # ground or floor
    horizon: int
    details: tuple[str, str]  # phrases for the top and the bottom region
    avoid: frozenset[str]  # object colours too close to this background to read well


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting("park", "a park", "in a park", False, (140, 200, 235), (110, 185, 80), 110,
                ("a clear blue sky", "green grass"), frozenset({"green"})),
        Setting("beach", "a beach", "on a beach", False, (160, 210, 240), (235, 215, 160), 110,
                ("a pale blue sky", "light sand"), frozenset({"yellow"})),
        Setting("snow", "a snowy field", "in a snowy field", False, (200, 210, 222),
                (245, 247, 250), 110, ("a pale grey sky", "white snow"), frozenset()),
        Setting("street", "a city street at night", "on a city street at night", False,
                (25, 30, 65), (95, 95, 100), 120, ("a dark night sky", "a grey road"),
                frozenset({"blue", "purple"})),
        Setting("living_room", "a living room", "in a living room", True, (232, 218, 185),
                (150, 100, 60), 150, ("a beige wall", "a wooden floor"), frozenset()),
        Setting("kitchen", "a kitchen", "in a kitchen", True, (205, 228, 235), (165, 165, 170),
                150, ("pale blue wall tiles", "a grey floor"), frozenset()),
    )
}


@dataclass(frozen=True)
class Box:
    """A half-open pixel rectangle [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def within(self, other: Box) -> bool:
        return (other.x0 <= self.x0 and self.x1 <= other.x1
                and other.y0 <= self.y0 and self.y1 <= other.y1)


def union(boxes: Iterable[Box]) -> Box:
    items = list(boxes)
    return Box(min(b.x0 for b in items), min(b.y0 for b in items),
               max(b.x1 for b in items), max(b.y1 for b in items))


@dataclass(frozen=True)
class Entity:
    """One group of identical objects, or the sign (kind `sign`, with `word` and `text_color`)."""

    key: str
    kind: str
    boxes: tuple[Box, ...]
    cell: tuple[int, int]  # (row, column)
    count: int = 1
    color: str | None = None
    size: str | None = None
    texture: str | None = None
    container: str | None = None  # key of the entity this one is drawn inside
    word: str | None = None
    text_color: str | None = None

    @property
    def bbox(self) -> Box:
        return union(self.boxes)

    @property
    def is_sign(self) -> bool:
        return self.kind == SIGN


@dataclass(frozen=True)
class Scene:
    index: int
    setting: str
    entities: tuple[Entity, ...]
    main: str = "g0"  # the only large group, every reference opens with it: the primary subject

    def get(self, key: str) -> Entity:
        for entity in self.entities:
            if entity.key == key:
                return entity
        raise KeyError(key)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(e.kind for e in self.entities)

    def children(self, key: str) -> list[Entity]:
        return [e for e in self.entities if e.container == key]


# --- relations ----------------------------------------------------------------------------------

FLIPS = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")


def _overlap(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def holds(relation: str, a: Box, b: Box) -> bool:
    """Whether `a` stands in `relation` to `b`, by box geometry alone."""
    if relation == "left_of":
        return a.x1 <= b.x0 and _overlap(a.y0, a.y1, b.y0, b.y1)
    if relation == "right_of":
        return holds("left_of", b, a)
    if relation == "above":
        return a.y1 <= b.y0 and _overlap(a.x0, a.x1, b.x0, b.x1)
    if relation == "below":
        return holds("above", b, a)
    if relation == "next_to":
        gap = max(b.x0 - a.x1, a.x0 - b.x1)
        return (holds("left_of", a, b) or holds("right_of", a, b)) and gap <= NEXT_TO_GAP
    if relation == "inside":
        return a.within(b)
    raise ValueError(f"unknown relation {relation!r}")


def quadrant_of(box: Box) -> str:
    x, y = box.center
    return f"{'top' if y < CANVAS / 2 else 'bottom'} {'left' if x < CANVAS / 2 else 'right'}"


# --- sampling -----------------------------------------------------------------------------------


def distinct_colors(color: str, palette: Iterable[str] = COLORS) -> list[str]:
    """Colours that cannot be mistaken for `color`: the candidates for a wrong colour claim."""
    return [c for c in palette if c != color and frozenset((c, color)) not in CONFUSABLE_COLORS]


def compatible_kinds(present: Iterable[str]) -> list[str]:
    """Kinds that are absent from, and not confusable with, the kinds `present`."""
    taken = set(present)
    return [k for k in KINDS
            if k not in taken and not any(frozenset((k, t)) in CONFUSABLE_KINDS for t in taken)]


def sign_size(word: str) -> tuple[int, int]:
    """Width and height of a sign (board plus post) for `word`."""
    width = len(word) * GLYPH_W * TEXT_SCALE + 2 * SIGN_PAD_X
    return width, GLYPH_H * TEXT_SCALE + 2 * SIGN_PAD_Y + SIGN_POST


@dataclass(frozen=True)
class SignLayout:
    board: Box
    post: Box
    text: Box  # where the scaled word is drawn


def sign_layout(box: Box) -> SignLayout:
    """Board, post and text boxes of a sign occupying `box` (see `sign_size`)."""
    board = Box(box.x0, box.y0, box.x1, box.y1 - SIGN_POST)
    mid = (box.x0 + box.x1) // 2
    post = Box(mid - 3, board.y1, mid + 3, box.y1)
    text = Box(board.x0 + SIGN_PAD_X, board.y0 + SIGN_PAD_Y, board.x1 - SIGN_PAD_X,
               board.y1 - SIGN_PAD_Y)
    return SignLayout(board, post, text)


def _place_row(rng: random.Random, cell: tuple[int, int], size: int, count: int) -> tuple[Box, ...]:
    """`count` boxes of `size` side by side, centred (with jitter) in `cell`'s bands."""
    (cx0, cx1), (cy0, cy1) = COLUMNS[cell[1]], ROWS[cell[0]]
    width = count * size + (count - 1) * GAP
    jx = min(JITTER, (cx1 - cx0 - width) // 2)
    jy = min(JITTER, (cy1 - cy0 - size) // 2)
    x0 = (cx0 + cx1 - width) // 2 + rng.randint(-jx, jx)
    y0 = (cy0 + cy1 - size) // 2 + rng.randint(-jy, jy)
    return tuple(Box(x0 + i * (size + GAP), y0, x0 + i * (size + GAP) + size, y0 + size)
                 for i in range(count))


def _place_sign(rng: random.Random, cell: tuple[int, int], word: str) -> Box:
    (cx0, cx1), (cy0, cy1) = COLUMNS[cell[1]], ROWS[cell[0]]
    width, height = sign_size(word)
    jx = min(JITTER, (cx1 - cx0 - width) // 2)
    jy = min(JITTER, (cy1 - cy0 - height) // 2)
    x0 = (cx0 + cx1 - width) // 2 + rng.randint(-jx, jx)
    y0 = (cy0 + cy1 - height) // 2 + rng.randint(-jy, jy)
    return Box(x0, y0, x0 + width, y0 + height)


def group_area(kind: str, size: str, count: int) -> int:
    """Pixels a group of `count` objects covers (members never overlap: GAP apart)."""
    return count * covered_area(kind, SIZES[size])


def visible_main_area(main: Entity) -> int:
    """Pixels the (large) main group shows for sure: an inside-object may cover some of it."""
    area = group_area(main.kind, "large", main.count)
    if main.kind in CONTAINERS and main.count == 1:
        area -= SIZES["small"] ** 2  # the most an inside-object can hide: its whole box
    return area


def _main_group(rng: random.Random, kind: str, cell: tuple[int, int],
                palette: list[str]) -> Entity:
    count = 1 if rng.random() < 0.75 else 2
    return Entity(key="g0", kind=kind, boxes=_place_row(rng, cell, SIZES["large"], count),
                  cell=cell, count=count, color=rng.choice(palette), size="large",
                  texture=rng.choice(TEXTURES))


def _other_group(rng: random.Random, key: str, kind: str, cell: tuple[int, int],
                 palette: list[str], budget: float) -> Entity:
    """A small group whose pixels stay within `budget`; counts are drawn among those that fit.

    One small object of any kind always fits: the smallest main (a large star) covers about
    twice a small square.
    """
    counts = [c for c in range(1, MAX_COUNT + 1) if group_area(kind, "small", c) <= budget]
    if not counts:
        raise ValueError(f"no {kind} group fits in {budget:.0f} pixels")
    count = rng.choice(counts)
    return Entity(key=key, kind=kind, boxes=_place_row(rng, cell, SIZES["small"], count),
                  cell=cell, count=count, color=rng.choice(palette), size="small",
                  texture=rng.choice(TEXTURES))


def _child(rng: random.Random, key: str, container: Entity, kinds: list[str],
           palette: list[str]) -> Entity:
    """A small object centred inside `container`, in a colour that stands out from it."""
    if container.color is None:
        raise ValueError("a container needs a colour")
    size = SIZES["small"]
    outer = container.boxes[0]
    x0 = outer.x0 + (outer.width - size) // 2
    y0 = outer.y0 + (outer.height - size) // 2
    return Entity(key=key, kind=rng.choice(kinds), boxes=(Box(x0, y0, x0 + size, y0 + size),),
                  cell=container.cell, count=1,
                  color=rng.choice(distinct_colors(container.color, palette)), size="small",
                  texture=rng.choice(("solid", "solid", "dotted")), container=container.key)


def _pick_kinds(rng: random.Random, n: int) -> list[str]:
    kinds: list[str] = []
    for _ in range(n):
        kinds.append(rng.choice(compatible_kinds(kinds)))
    return kinds


def sample_scene(rng: random.Random, index: int) -> Scene:
    """A random scene; everything random comes from `rng`, so a seed fixes the scene."""
    setting = SETTINGS[rng.choice(sorted(SETTINGS))]
    palette = [c for c in COLORS if c not in setting.avoid]
    cells = [(r, c) for r in (0, 1) for c in (0, 1)]
    rng.shuffle(cells)
    n_groups = rng.randint(2, 3)
    main_kind, *other_kinds = _pick_kinds(rng, n_groups)
    main = _main_group(rng, main_kind, cells[0], palette)
    budget = MAIN_AREA_SHARE * visible_main_area(main)
    groups = [main, *(_other_group(rng, f"g{i}", kind, cells[i], palette, budget)
                      for i, kind in enumerate(other_kinds, start=1))]
    entities: list[Entity] = list(groups)

    # Only the main group is large, so only it can hold another object; that small object is
    # well within the area budget (a small square is under half of any container's budget).
    if main.kind in CONTAINERS and main.count == 1 and rng.random() < 0.8:
        kinds = compatible_kinds(g.kind for g in groups)
        entities.append(_child(rng, f"g{n_groups}", main, kinds, palette))

    if rng.random() < 0.75:
        word = rng.choice(WORDS)
        cell = cells[n_groups]
        entities.append(Entity(key="sign", kind=SIGN, boxes=(_place_sign(rng, cell, word),),
                               cell=cell, word=word,
                               text_color=rng.choice(sorted(TEXT_COLORS))))
    return Scene(index=index, setting=setting.key, entities=tuple(entities))
