"""From a seed to images and manifest rows: a scene, its reference, a clean and edited actors.

Image `i` of seed `s` draws everything from its own generator (seeded with the text
"claimdiff.synth/s/i"), so it does not depend on how many images are made; only the choice of
edit kinds looks back, at how often each kind was used for the images before it, so that every
kind is used about equally often and the kinds a scene rarely allows still appear.

Samples and actors. The image's own sample (`synth-<seed>-<index>`) holds the clean caption
(actor `clean`, no differences) and every edit that leaves the reference true, one actor per
edit kind (`edit-<kind>`; kinds are distinct within an image). An edit that corrupts the
reference makes another (image, reference) pair, so another sample, `<image sample>-r<slot>`:
- `both_wrong` (actor and reference wrong, differently): the sample also holds the clean caption
  (actor `clean`, edit `clean_vs_wrong_reference`) with its gold against that wrong reference, a
  `reference_error` on the same fact, so the reward ordering compares clean against both-wrong
  under the same reference;
- `reference_error`, `reference_hallucination`: the edited caption is itself the clean caption
  (the actor states the truth), so the sample has that one row and no ordering pair.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from claimdiff.schemas.judge import JudgeOutput, Overall
from claimdiff.synth.captions import Caption, Claims, Style, describe, render_caption
from claimdiff.synth.edits import EDIT_KINDS, Edit, build_edit, clean_against
from claimdiff.synth.render import png_bytes, render
from claimdiff.synth.scene import Scene, sample_scene

CLEAN = "clean"
NO_EDIT = "none"
# the `edit` of the clean caption judged against a both-wrong sample's corrupted reference: its
# own label, so per-edit metrics do not mix it with real reference_error edits
CLEAN_VS_WRONG_REFERENCE = "clean_vs_wrong_reference"


@dataclass(frozen=True)
class SyntheticRow:
    record: dict[str, Any]  # the manifest row, JSON-ready
    # The edit whose gold difference the row carries: None for the clean caption under the true
    # reference; a `reference_error` (from `clean_against`) for the clean caption of a both-wrong
    # sample.
    edit: Edit | None


@dataclass(frozen=True)
class SyntheticImage:
    index: int
    path: str  # relative to the manifest's folder
    scene: Scene
    claims: Claims  # what the (true) reference states
    png: bytes
    rows: tuple[SyntheticRow, ...]


def actor_id(edit: Edit) -> str:
    return f"edit-{edit.kind}"


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


def _row(path: str, sample_id: str, actor: str, reference: str, caption: str,
         gold: JudgeOutput, edit: Edit | None, label: str | None = None) -> SyntheticRow:
    outcomes = "+".join(o.value for o in edit.outcomes()) if edit else NO_EDIT
    record = {
        "image": path, "reference": reference, "caption": caption, "sample_id": sample_id,
        "actor_id": actor, "gold": gold.model_dump(mode="json"),
        "edit": label or (edit.kind if edit else NO_EDIT),
        "edit_severity": edit.severity if edit else 0,
        "edit_outcome": outcomes,
    }
    return SyntheticRow(record=record, edit=edit)


def _edited_row(path: str, sample_id: str, actor: str, edit: Edit, caption: Caption,
                reference: Caption, label: str | None = None) -> SyntheticRow:
    gold = JudgeOutput(differences=[edit.difference(caption, reference)],
                       overall=Overall(edit.overall))
    return _row(path, sample_id, actor, reference.text, caption.text, gold, edit, label)


def _edit_rows(path: str, sample_id: str, slot: int, edit: Edit, *, scene: Scene, truth: Claims,
               reference_style: Style, actor_style: Style, clean: Caption) -> list[SyntheticRow]:
    """The rows one edit adds: its own, and the clean caption's where it makes a new sample."""
    reference = render_caption(edit.reference, reference_style)
    caption = render_caption(edit.actor, actor_style)
    if edit.reference == truth:
        return [_edited_row(path, sample_id, actor_id(edit), edit, caption, reference)]
    # a corrupted reference is another (image, reference) pair, so another sample
    sid = f"{sample_id}-r{slot}"
    rows = [_edited_row(path, sid, actor_id(edit), edit, caption, reference)]
    counterpart = clean_against(edit, scene, truth)
    if counterpart is not None:
        rows.insert(0, _edited_row(path, sid, CLEAN, counterpart, clean, reference,
                                   CLEAN_VS_WRONG_REFERENCE))
    return rows


def _check_keys(rows: Sequence[SyntheticRow]) -> None:
    # a repeated (sample, actor) key would make the evaluation's join ambiguous, silently
    keys = Counter((r.record["sample_id"], r.record["actor_id"]) for r in rows)
    repeated = [key for key, n in keys.items() if n > 1]
    if repeated:
        raise RuntimeError(f"repeated (sample_id, actor_id) keys: {repeated}")


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
    clean = render_caption(truth, style if rng.random() < 0.3 else Style(rng.getrandbits(32)))
    rows = [_row(path, sample_id, CLEAN, reference.text, clean.text,
                 JudgeOutput(differences=[], overall=Overall.TIE), None)]
    for slot, edit in enumerate(_choose_edits(scene, truth, rng, edits_per_image, used)):
        actor_style = style if rng.random() < 0.5 else Style(rng.getrandbits(32))
        rows.extend(_edit_rows(path, sample_id, slot, edit, scene=scene, truth=truth,
                               reference_style=style, actor_style=actor_style, clean=clean))
    _check_keys(rows)
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
