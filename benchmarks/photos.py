"""Photo-like test images, generated (no data set to download): smooth low-frequency colour
fields, hard-edged shapes and sensor-like noise, so JPEG and PNG files have the entropy, and
therefore the decode cost, of real photos rather than of flat synthetic scenes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

# (name, width, height): 0.3 to 12 megapixels, 4:3 like most camera photos
SIZES = [("0.3MP", 640, 480), ("1MP", 1152, 864), ("3MP", 2000, 1500), ("6MP", 2832, 2124),
         ("12MP", 4000, 3000)]


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    # low-frequency field: a coarse random grid upsampled with bicubic interpolation
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    base = Image.fromarray(coarse, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    for _ in range(40):  # edges and textures at many scales, as objects in a scene
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(max(4, width // 100), max(8, width // 6)))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    pixels = np.asarray(base, dtype=np.int16)
    noise = rng.normal(0, 9, size=pixels.shape).astype(np.int16)  # sensor noise
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()
