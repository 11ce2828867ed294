"""Pillow rendering of a scene graph: background, patterned objects with parts, signs with text.

Everything is drawn without anti-aliasing, so every pixel carries one exact palette colour and the
tests can look colours, patterns and words up pixel by pixel. Each object is drawn from its body
mask (`shapes`) filled with its pattern, fixed-colour parts on top (roof, door, trunk, wheels),
and a dark one-pixel outline. The pattern (plain, striped, dotted, checkered, in white) is the
scene's material-like texture: the surface an object is "made of", which captions and the gold
call its pattern and the taxonomy files under `material`.
"""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageDraw, ImageFont

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
from claimdiff.synth.shapes import OUTLINE, outline, shape, silhouette

PATTERN: RGB = (255, 255, 255)  # stripes, dots and checks: pure white appears nowhere else
BOARD: RGB = (250, 245, 225)
POST: RGB = (120, 80, 40)
TILE_LINE: RGB = (180, 205, 212)
FLOORBOARD_LINE: RGB = (135, 88, 50)


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


def texture_tile(texture: str, color: RGB, s: int) -> Image.Image:
    """An s x s tile of `color` with `texture`'s white pattern: what an object's body shows."""
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
    body, parts = shape(entity.kind, box.width)
    tile = texture_tile(entity.texture, COLORS[entity.color], box.width)
    for mask, color in parts:
        tile.paste(color, (0, 0, box.width, box.height), mask)
    covered = silhouette(body, parts)
    canvas.paste(tile, (box.x0, box.y0), covered)
    canvas.paste(OUTLINE, (box.x0, box.y0, box.x1, box.y1), outline(covered))


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
