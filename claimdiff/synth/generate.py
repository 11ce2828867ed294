"""From a seed to images and manifest rows: a scene, its reference, a clean and edited actors.

Image `i` of seed `s` draws everything from its own generator (seeded with the text
"claimdiff.synth/s/i"), so it does not depend on how many images are made; only the choice of
edit kinds looks back, at how often each kind was used for the images before it, so that every
kind is used about equally often and the kinds a scene rarely allows still appear.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from claimdiff.schemas.judge import JudgeOutput, Overall
from claimdiff.synth.captions import Claims, Style, describe, render_caption
from claimdiff.synth.edits import EDIT_KINDS, Edit, build_edit
from claimdiff.synth.render import png_bytes, render
from claimdiff.synth.scene import Scene, sample_scene

CLEAN = "clean"
NO_EDIT = "none"


@dataclass(frozen=True)
class SyntheticRow:
    record: dict[str, Any]  # the manifest row, JSON-ready
    edit: Edit | None  # None for the clean caption


@dataclass(frozen=True)
class SyntheticImage:
    index: int
    path: str  # relative to the manifest's folder
    scene: Scene
    claims: Claims  # what the (true) reference states
    png: bytes
    rows: tuple[SyntheticRow, ...]


def _choose_edits(scene: Scene, truth: Claims, rng: random.Random, count: int,
                  used: Counter[str]) -> list[Edit]:
    """`count` edits of distinct kinds, the least used kinds first (ties broken at random)."""
    ties = {kind: rng.random() for kind in EDIT_KINDS}
    edits: list[Edit] = []
    for kind in sorted(EDIT_KINDS, key=lambda k: (used[k], ties[k])):
        if len(edits) == count:
            break
        edit = build_edit(kind, scene, truth, rng)
        if edit is not None:
            edits.append(edit)
            used[kind] += 1
    return edits


def _row(path: str, sample_id: str, actor_id: str, reference: str, caption: str,
         gold: JudgeOutput, edit: Edit | None) -> SyntheticRow:
    outcomes = "+".join(o.value for o in edit.outcomes()) if edit else NO_EDIT
    record = {
        "image": path, "reference": reference, "caption": caption, "sample_id": sample_id,
        "actor_id": actor_id, "gold": gold.model_dump(mode="json"),
        "edit": edit.kind if edit else NO_EDIT, "edit_severity": edit.severity if edit else 0,
        "edit_outcome": outcomes,
    }
    return SyntheticRow(record=record, edit=edit)


def synthetic_image(index: int, *, seed: int, edits_per_image: int,
                    used: Counter[str]) -> SyntheticImage:
    rng = random.Random(f"claimdiff.synth/{seed}/{index}")
    scene = sample_scene(rng, index)
    truth = describe(scene, rng)
    style = Style(rng.getrandbits(32))
    reference = render_caption(truth, style)
    path = f"images/scene_{index:05d}.png"
    sample_id = f"synth-{seed}-{index:05d}"

    # the clean actor: the same claims, copied or paraphrased
    clean_style = style if rng.random() < 0.3 else Style(rng.getrandbits(32))
    rows = [_row(path, sample_id, CLEAN, reference.text, render_caption(truth, clean_style).text,
                 JudgeOutput(differences=[], overall=Overall.TIE), None)]
    for slot, edit in enumerate(_choose_edits(scene, truth, rng, edits_per_image, used)):
        actor_style = style if rng.random() < 0.5 else Style(rng.getrandbits(32))
        edited_reference = render_caption(edit.reference, style)
        actor = render_caption(edit.actor, actor_style)
        gold = JudgeOutput(differences=[edit.difference(actor, edited_reference)],
                           overall=Overall(edit.overall))
        # a corrupted reference is another (image, reference) pair, so another sample
        sid = sample_id if edit.reference == truth else f"{sample_id}-r{slot}"
        rows.append(_row(path, sid, f"edit-{edit.kind}-{slot}", edited_reference.text,
                         actor.text, gold, edit))
    return SyntheticImage(index=index, path=path, scene=scene, claims=truth,
                          png=png_bytes(render(scene)), rows=tuple(rows))


def generate(n: int, *, seed: int = 0, edits_per_image: int = 3) -> Iterator[SyntheticImage]:
    """`n` synthetic images with their rows, deterministic in (`seed`, `edits_per_image`)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= edits_per_image <= len(EDIT_KINDS):
        raise ValueError(f"edits_per_image must be in [0, {len(EDIT_KINDS)}], "
                         f"got {edits_per_image}")
    used: Counter[str] = Counter()
    for index in range(n):
        yield synthetic_image(index, seed=seed, edits_per_image=edits_per_image, used=used)
