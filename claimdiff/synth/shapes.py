"""Pixel masks of each object kind: the one definition of what an object covers.

The renderer paints these masks, and the scene sampler reads their areas to keep the main group
the most salient one, so both agree on every pixel. Masks are drawn without anti-aliasing (0 or
255) and keep a one-pixel margin, so the outline drawn around them stays inside the object's box.
"""

from __future__ import annotations

import math
from functools import cache

from PIL import Image, ImageChops, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
Parts = list[tuple[Image.Image, RGB]]

OUTLINE: RGB = (40, 40, 40)
PART_COLORS: dict[str, RGB] = {
    "roof": (85, 85, 95),
    "door": (110, 70, 35),
    "trunk": (120, 80, 40),
    "wheels": (10, 10, 10),
}
WINDOW: RGB = (190, 225, 250)


def _mask(size: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    mask = Image.new("L", (size, size), 0)
    return mask, ImageDraw.Draw(mask)


def _star(lo: int, hi: int) -> list[tuple[int, int]]:
    c, outer = (lo + hi) / 2, (hi - lo) / 2
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else outer * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((round(c + radius * math.cos(angle)), round(c + radius * math.sin(angle))))
    return points


def _part(s: int, shape: str, coords: object, color: RGB) -> tuple[Image.Image, RGB]:
    mask, draw = _mask(s)
    getattr(draw, shape)(coords, fill=255)
    return mask, color


def shape(kind: str, s: int) -> tuple[Image.Image, Parts]:
    """Body mask and fixed-colour parts of one object of `kind` in an s x s box."""
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
        draw.polygon(_star(lo, hi), fill=255)
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


def silhouette(body: Image.Image, parts: Parts) -> Image.Image:
    """Body and parts together: everything the object paints before its outline."""
    mask = body
    for part, _ in parts:
        mask = ImageChops.lighter(mask, part)
    return mask


def outline(silhouette_mask: Image.Image) -> Image.Image:
    """The one-pixel ring around a silhouette, where the dark outline is drawn."""
    return ImageChops.subtract(silhouette_mask.filter(ImageFilter.MaxFilter(3)), silhouette_mask)


@cache
def covered_area(kind: str, s: int) -> int:
    """Pixels one object of `kind` in an s x s box covers on the canvas (outline included)."""
    covered = silhouette(*shape(kind, s)).filter(ImageFilter.MaxFilter(3))
    # masks hold 0 or 255 only: the histogram's last bin counts the covered pixels
    return covered.histogram()[255]
