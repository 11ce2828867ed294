"""Pillow rendering of a scene graph: background, patterned objects with parts, signs with text.

Everything is drawn without anti-aliasing, so every pixel carries one exact palette colour and the
tests can look colours, patterns and words up pixel by pixel. Each object is drawn from a body
mask filled with its pattern, fixed-colour parts on top (roof, door, trunk, wheels), and a dark
one-pixel outline; masks keep a one-pixel margin so the outline stays inside the object's box.
"""

from __future__ import annotations

import io
import math
from functools import cache

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from claimdiff.synth.scene import (
    CANVAS,
    COLORS,
    GLYPH_H,
    GLYPH_W,
    RGB,
    SETTINGS,
    TEXT_COLORS,
    TEXT_SCALE,
    Box,
    Entity,
    Scene,
    Setting,
    sign_layout,
)

OUTLINE: RGB = (40, 40, 40)
PATTERN: RGB = (255, 255, 255)  # stripes, dots and checks: pure white appears nowhere else
PART_COLORS: dict[str, RGB] = {
    "roof": (85, 85, 95),
    "door": (110, 70, 35),
    "trunk": (120, 80, 40),
    "wheels": (10, 10, 10),
}
WINDOW: RGB = (190, 225, 250)
BOARD: RGB = (250, 245, 225)
POST: RGB = (120, 80, 40)
TILE_LINE: RGB = (180, 205, 212)
FLOORBOARD_LINE: RGB = (135, 88, 50)

Parts = list[tuple[Image.Image, RGB]]


@cache
def render_background(setting: Setting) -> Image.Image:
    """The setting alone: the reference against which tests find what objects cover."""
    image = Image.new("RGB", (CANVAS, CANVAS), setting.top)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, setting.horizon, CANVAS - 1, CANVAS - 1), fill=setting.bottom)
    if setting.key == "kitchen":  # tiled wall
        for v in range(16, CANVAS, 16):
            draw.line((v, 0, v, setting.horizon - 1), fill=TILE_LINE)
            if v < setting.horizon:
                draw.line((0, v, CANVAS - 1, v), fill=TILE_LINE)
    elif setting.key == "living_room":  # floorboards
        for y in range(setting.horizon + 14, CANVAS, 14):
            draw.line((0, y, CANVAS - 1, y), fill=FLOORBOARD_LINE)
    return image


def _mask(size: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    mask = Image.new("L", (size, size), 0)
    return mask, ImageDraw.Draw(mask)


def _star(size: int, lo: int, hi: int) -> list[tuple[int, int]]:
    c, outer = (lo + hi) / 2, (hi - lo) / 2
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else outer * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((round(c + radius * math.cos(angle)), round(c + radius * math.sin(angle))))
    return points


def _shape(kind: str, s: int) -> tuple[Image.Image, Parts]:
    """Body mask and coloured parts of one object of `kind` in an s x s box."""
    lo, hi = 1, s - 2

    def f(fraction: float) -> int:
        return round(fraction * s)

    body, draw = _mask(s)
    parts: Parts = []
    if kind in ("circle", "ball"):
        draw.ellipse((lo, lo, hi, hi), fill=255)
    elif kind == "square":
        draw.rectangle((lo, lo, hi, hi), fill=255)
    elif kind == "triangle":
        draw.polygon([(s // 2, lo), (lo, hi), (hi, hi)], fill=255)
    elif kind == "star":
        draw.polygon(_star(s, lo, hi), fill=255)
    elif kind == "house":
        draw.rectangle((lo, f(0.45), hi, hi), fill=255)
        parts.append(_part(s, "polygon", [(lo, f(0.47)), (s // 2, lo), (hi, f(0.47))],
                           PART_COLORS["roof"]))
        parts.append(_part(s, "rectangle", (f(0.42), f(0.68), f(0.58), hi), PART_COLORS["door"]))
        parts.append(_part(s, "rectangle", (f(0.14), f(0.56), f(0.3), f(0.7)), WINDOW))
    elif kind == "tree":
        draw.ellipse((lo, lo, hi, f(0.74)), fill=255)
        parts.append(_part(s, "rectangle", (f(0.42), f(0.7), f(0.58), hi), PART_COLORS["trunk"]))
    elif kind == "car":
        draw.rectangle((lo, f(0.45), hi, f(0.8)), fill=255)
        draw.polygon([(f(0.2), f(0.46)), (f(0.32), f(0.2)), (f(0.68), f(0.2)), (f(0.8), f(0.46))],
                     fill=255)
        r = f(0.12)
        for cx in (f(0.27), f(0.73)):
            parts.append(_part(s, "ellipse", (cx - r, f(0.78) - r, cx + r, f(0.78) + r),
                               PART_COLORS["wheels"]))
    elif kind == "cup":
        draw.polygon([(f(0.08), f(0.18)), (f(0.68), f(0.18)), (f(0.6), hi), (f(0.16), hi)],
                     fill=255)
        draw.ellipse((f(0.5), f(0.3), hi, f(0.72)), outline=255, width=max(2, s // 10))
    else:
        raise ValueError(f"cannot draw kind {kind!r}")
    if kind == "ball":  # seams, clipped to the ball, tell a ball from a flat circle
        seam, pen = _mask(s)
        pen.arc((lo - s // 3, f(0.3), hi + s // 3, f(1.2)), 180, 360, fill=255, width=2)
        pen.line((s // 2, lo, s // 2, hi), fill=255, width=2)
        parts.append((ImageChops.multiply(seam, body), OUTLINE))
    return body, parts


def _part(s: int, shape: str, coords: object, color: RGB) -> tuple[Image.Image, RGB]:
    mask, draw = _mask(s)
    getattr(draw, shape)(coords, fill=255)
    return mask, color


def _texture(texture: str, color: RGB, s: int) -> Image.Image:
    tile = Image.new("RGB", (s, s), color)
    draw = ImageDraw.Draw(tile)
    step = 8 if s > 40 else 6
    if texture == "striped":
        for y in range(0, s, step):
            draw.rectangle((0, y, s - 1, y + step // 3 - 1), fill=PATTERN)
    elif texture == "dotted":
        r = step // 4
        for row, y in enumerate(range(step // 2, s, step)):
            for x in range(step // 2 + (row % 2) * step // 2, s, step):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=PATTERN)
    elif texture == "checkered":
        for i, y in enumerate(range(0, s, step)):
            for j, x in enumerate(range(0, s, step)):
                if (i + j) % 2:
                    draw.rectangle((x, y, x + step - 1, y + step - 1), fill=PATTERN)
    elif texture != "solid":
        raise ValueError(f"unknown texture {texture!r}")
    return tile


def _draw_object(canvas: Image.Image, entity: Entity, box: Box) -> None:
    if entity.color is None or entity.texture is None:
        raise ValueError(f"object {entity.key} needs a colour and a texture")
    body, parts = _shape(entity.kind, box.width)
    tile = _texture(entity.texture, COLORS[entity.color], box.width)
    silhouette = body
    for mask, color in parts:
        tile.paste(color, (0, 0, box.width, box.height), mask)
        silhouette = ImageChops.lighter(silhouette, mask)
    outline = ImageChops.subtract(silhouette.filter(ImageFilter.MaxFilter(3)), silhouette)
    canvas.paste(tile, (box.x0, box.y0), silhouette)
    canvas.paste(OUTLINE, (box.x0, box.y0, box.x1, box.y1), outline)


@cache
def text_mask(word: str) -> Image.Image:
    """The word in Pillow's bitmap default font at TEXT_SCALE: 255 on glyph pixels, else 0."""
    font = ImageFont.load_default_imagefont()
    small = Image.new("L", (len(word) * GLYPH_W, GLYPH_H), 0)
    ImageDraw.Draw(small).text((0, 0), word, fill=255, font=font)
    small = small.point(lambda v: 255 if v >= 128 else 0)
    return small.resize((small.width * TEXT_SCALE, small.height * TEXT_SCALE),
                        Image.Resampling.NEAREST)


def _draw_sign(canvas: Image.Image, entity: Entity) -> None:
    if entity.word is None or entity.text_color is None:
        raise ValueError(f"sign {entity.key} needs a word and a text colour")
    layout = sign_layout(entity.boxes[0])
    draw = ImageDraw.Draw(canvas)
    post, board, text = layout.post, layout.board, layout.text
    draw.rectangle((post.x0, post.y0, post.x1 - 1, post.y1 - 1), fill=POST)
    draw.rectangle((board.x0, board.y0, board.x1 - 1, board.y1 - 1), fill=BOARD, outline=OUTLINE,
                   width=2)
    canvas.paste(TEXT_COLORS[entity.text_color], (text.x0, text.y0, text.x1, text.y1),
                 text_mask(entity.word))


def render(scene: Scene) -> Image.Image:
    image = render_background(SETTINGS[scene.setting]).copy()
    # containers first, so an inside-object is drawn over its container
    for entity in sorted(scene.entities, key=lambda e: e.container is not None):
        if entity.is_sign:
            _draw_sign(image, entity)
        else:
            for box in entity.boxes:
                _draw_object(image, entity, box)
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
