"""Write a synthetic set to any fsspec URL: images, `manifest.jsonl`, `scenes.jsonl`."""

from __future__ import annotations

import json
from dataclasses import asdict

from claimdiff.synth.generate import generate

MANIFEST = "manifest.jsonl"
SCENES = "scenes.jsonl"


def write_synthetic(out: str, *, n: int, seed: int = 0, edits_per_image: int = 3) -> str:
    """Write `n` scenes under the folder URL `out`; returns the manifest's URI.

    Layout: `images/scene_NNNNN.png`, `manifest.jsonl` (one row per actor caption, the project's
    input format with `gold` and the metadata columns `edit`, `edit_severity`, `edit_outcome`),
    and `scenes.jsonl` (one scene graph per image, for analyses by object, colour or relation).
    Each image gets a clean caption and up to `edits_per_image` edited ones of distinct kinds
    (fewer where the scene allows fewer kinds, e.g. no sign means no text edit). The same
    arguments write byte-identical files.
    """
    import fsspec

    fs, root = fsspec.core.url_to_fs(out)
    root = root.rstrip("/")
    fs.makedirs(f"{root}/images", exist_ok=True)
    rows: list[str] = []
    scenes: list[str] = []
    for image in generate(n, seed=seed, edits_per_image=edits_per_image):
        fs.pipe_file(f"{root}/{image.path}", image.png)
        rows.extend(json.dumps(row.record, ensure_ascii=False) for row in image.rows)
        scenes.append(json.dumps({"image": image.path, "scene": asdict(image.scene)}))
    fs.pipe_file(f"{root}/{MANIFEST}", "".join(r + "\n" for r in rows).encode("utf-8"))
    fs.pipe_file(f"{root}/{SCENES}", "".join(s + "\n" for s in scenes).encode("utf-8"))
    return f"{out.rstrip('/')}/{MANIFEST}"
