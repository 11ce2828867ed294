"""A small sample set (`claimdiff sample`): drawn shapes, captions with known edits, gold labels,
and a few deliberately broken rows. `claimdiff synth` is the full diagnostic generator; this is
its quick companion for a first look at `failures/`.

Each scene is a few shapes drawn with Pillow. The reference caption describes it; each actor
caption applies one controlled edit (or none), and the edit is recorded as the gold difference
the `labels` judge reads, so a new user sees meaningful differences and rewards with no model.
A few deliberately broken rows (a truncated image, a missing image, a malformed row) show
`failures/` at work.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from claimdiff.synth.render import png_bytes

COLORS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
    "yellow": (235, 210, 40), "purple": (140, 60, 170), "orange": (240, 140, 30),
}
SHAPES = ("circle", "square", "triangle")
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
BACKGROUNDS = {"white": (250, 250, 250), "grey": (150, 150, 150), "black": (20, 20, 20)}


@dataclass(frozen=True)
class Scene:
    shape: str
    color: str
    count: int
    side_shape: str
    side_color: str
    background: str

    def subject(self, count: int | None = None, color: str | None = None) -> str:
        n = self.count if count is None else count
        noun = self.shape if n == 1 else f"{self.shape}s"
        return f"{NUMBERS[n]} {color or self.color} {noun}"

    def reference(self) -> str:
        return (f"{self.subject().capitalize()} above a small {self.side_color} "
                f"{self.side_shape}.")


def _difference(aspect: str, actor: str | None, reference: str | None, judgment: str,
                actor_error: dict[str, Any] | None = None,
                reference_error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"aspect": aspect, "actor_claim": actor, "reference_claim": reference,
            "actor_span": actor, "reference_span": reference, "judgment": judgment,
            "actor_error": actor_error, "reference_error": reference_error, "confidence": 1.0}


def _error(kind: str, detail: str, severity: int) -> dict[str, Any]:
    return {"type": kind, "detail": detail, "severity": severity}


Edit = Callable[[Scene, random.Random], tuple[str, str, list[dict[str, Any]]]]


def faithful(scene: Scene, rng: random.Random) -> tuple[str, str, list[dict[str, Any]]]:
    return "faithful", scene.reference(), []


def wrong_color(scene: Scene, rng: random.Random) -> tuple[str, str, list[dict[str, Any]]]:
    color = rng.choice([c for c in COLORS if c not in (scene.color, scene.side_color)])
    caption = (f"{scene.subject(color=color).capitalize()} above a small {scene.side_color} "
               f"{scene.side_shape}.")
    return "wrong_color", caption, [_difference(
        f"colour of the {scene.shape}s" if scene.count > 1 else f"colour of the {scene.shape}",
        f"The {scene.shape} is {color}.", f"The {scene.shape} is {scene.color}.", "reference",
        actor_error=_error("color_mismatch", f"{color} instead of {scene.color}", 2))]


def wrong_count(scene: Scene, rng: random.Random) -> tuple[str, str, list[dict[str, Any]]]:
    count = scene.count + 1
    caption = (f"{scene.subject(count=count).capitalize()} above a small {scene.side_color} "
               f"{scene.side_shape}.")
    return "wrong_count", caption, [_difference(
        f"number of {scene.shape}s", f"There are {NUMBERS[count]} {scene.shape}s.",
        f"There {'is' if scene.count == 1 else 'are'} {scene.subject()}.", "reference",
        actor_error=_error("count_mismatch", f"{count} instead of {scene.count}", 3))]


def omission(scene: Scene, rng: random.Random) -> tuple[str, str, list[dict[str, Any]]]:
    caption = f"{scene.subject().capitalize()}."
    return "omission", caption, [_difference(
        f"the {scene.side_shape}", None,
        f"There is a small {scene.side_color} {scene.side_shape}.", "reference",
        actor_error=_error("object_omission", f"the {scene.side_shape} is not mentioned", 2))]


def extra_detail(scene: Scene, rng: random.Random) -> tuple[str, str, list[dict[str, Any]]]:
    caption = f"{scene.reference()} The background is {scene.background}."
    return "extra_correct", caption, [_difference(
        "background colour", f"The background is {scene.background}.", None, "actor",
        reference_error=_error("background_omission", "the background is not mentioned", 1))]


def hallucinated_object(scene: Scene, rng: random.Random) -> tuple[str, str, list[dict[str, Any]]]:
    caption = f"{scene.reference()} A dog sits in the corner."
    return "hallucination", caption, [_difference(
        "a dog", "A dog sits in the corner.", None, "reference",
        actor_error=_error("object_hallucination", "there is no dog", 3))]


EDITS: tuple[Edit, ...] = (faithful, wrong_color, wrong_count, omission, extra_detail,
                           hallucinated_object)


def draw(scene: Scene, size: int = 128) -> Image.Image:
    image = Image.new("RGB", (size, size), BACKGROUNDS[scene.background])
    pen = ImageDraw.Draw(image)
    step = size // (scene.count + 1)
    radius = size // 10
    for i in range(scene.count):
        cx, cy = step * (i + 1), size // 3
        _shape(pen, scene.shape, cx, cy, radius, COLORS[scene.color])
    _shape(pen, scene.side_shape, size // 2, size * 3 // 4, radius // 2, COLORS[scene.side_color])
    return image


def _shape(pen: ImageDraw.ImageDraw, shape: str, cx: int, cy: int, r: int,
           fill: tuple[int, int, int]) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        pen.ellipse(box, fill=fill)
    elif shape == "square":
        pen.rectangle(box, fill=fill)
    else:
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)


def random_scene(rng: random.Random) -> Scene:
    color, side_color = rng.sample(list(COLORS), 2)
    return Scene(shape=rng.choice(SHAPES), color=color, count=rng.randint(1, 3),
                 side_shape=rng.choice(SHAPES), side_color=side_color,
                 background=rng.choice(list(BACKGROUNDS)))


def write_sample(out: str, *, images: int = 10, actors: int = 4, seed: int = 0,
                 broken: bool = True) -> str:
    """Write images and `manifest.jsonl` under `out` (any fsspec URL); returns the manifest URI."""
    import fsspec

    rng = random.Random(seed)
    fs, root = fsspec.core.url_to_fs(out)
    fs.makedirs(f"{root}/images", exist_ok=True)
    rows: list[str] = []
    for index in range(images):
        scene = random_scene(rng)
        name = f"images/scene_{index:04d}.png"
        with fs.open(f"{root}/{name}", "wb") as handle:
            handle.write(png_bytes(draw(scene)))
        for edit in [EDITS[0], *rng.sample(EDITS[1:], min(actors, len(EDITS)) - 1)]:
            label, caption, differences = edit(scene, rng)
            overall = "tie" if not differences else (
                "actor" if differences[0]["judgment"] == "actor" else "reference")
            rows.append(json.dumps({
                "image": name, "reference": scene.reference(), "caption": caption,
                "actor_id": f"{label}", "edit": label,
                "gold": {"differences": differences, "overall": overall},
            }))
    if broken:
        truncated = png_bytes(draw(random_scene(rng)))[:200]
        with fs.open(f"{root}/images/truncated.png", "wb") as handle:
            handle.write(truncated)
        gold = {"differences": [], "overall": "tie"}
        rows.append(json.dumps({"image": "images/truncated.png", "reference": "A shape.",
                                "caption": "A shape.", "edit": "broken_image", "gold": gold}))
        rows.append(json.dumps({"image": "images/missing.png", "reference": "A shape.",
                                "caption": "A shape.", "edit": "missing_image", "gold": gold}))
        rows.append(json.dumps({"image": "images/scene_0000.png", "reference": "A shape.",
                                "edit": "malformed_row"}))
    manifest = f"{out.rstrip('/')}/manifest.jsonl"
    with fsspec.open(manifest, "w", encoding="utf-8") as handle:
        handle.write("\n".join(rows) + "\n")
    return manifest
