"""The synthetic diagnostic generator: deterministic, valid rows, gold that is true of the image.

Gold differences are checked twice: against the scene graph, and against the pixels (colours in
an object's box, objects counted by occupied column runs, patterns by the white pattern pixels on
an object's body, relations by box geometry, an inside-object by its container's pixels all
round it, the sign's word by its glyph mask, the setting by the background colours). Wrong values
(including the wrong option of a hedge) are checked to be false the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from PIL import Image

from claimdiff.config import ClaimdiffConfig, TaxonomyConfig
from claimdiff.io.manifest import iter_manifest, validate_row
from claimdiff.judges.judge_setup import decoding_params
from claimdiff.rewards.outcomes import difference_kind, outcomes_of
from claimdiff.rewards.stats import Provenance, count_hedges, derive
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.judge import JudgeOutput, Judgment
from claimdiff.synth import EDIT_KINDS, INTENDED_OUTCOMES, generate, write_synthetic
from claimdiff.synth.captions import NUMBERS, Place
from claimdiff.synth.edits import Fact
from claimdiff.synth.generate import CLEAN, SyntheticImage
from claimdiff.synth.render import PATTERN, render, render_background, text_mask, texture_tile
from claimdiff.synth.scene import (
    CANVAS,
    COLORS,
    CONFUSABLE_KINDS,
    MAIN_AREA_SHARE,
    PARTS,
    SETTINGS,
    SIZES,
    TEXT_COLORS,
    Box,
    Entity,
    Scene,
    holds,
    quadrant_of,
    sample_scene,
    sign_layout,
)
from claimdiff.synth.shapes import PART_COLORS, shape

N = 60
SCHEMES = ("file", "memory")
MARKERS = ("{", "}", "<", ">", "_", "None", "  ")
# number agreement slips a template could make: "there are also a sign", "is two balls"
BAD_GRAMMAR = re.compile(
    r"\b(are|are also) (a|an|one)\b|\bis (also )?(two|three|four|five|six)\b"
    r"|\beach \w+ have\b|\b(a|an) (a|an|the)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def images() -> list[SyntheticImage]:
    return list(generate(N, seed=0))


def _rows(images: list[SyntheticImage]) -> list[tuple[SyntheticImage, Any]]:
    return [(image, row) for image in images for row in image.rows]


# --- pixels -------------------------------------------------------------------------------------


class Pixels:
    """One rendered image with what the objects cover (pixels that differ from the setting)."""

    def __init__(self, scene: Scene, image: Image.Image) -> None:
        self.scene = scene
        self.rgb = np.asarray(image.convert("RGB"))
        background = np.asarray(render_background(SETTINGS[scene.setting]))
        self.covered = (self.rgb != background).any(axis=2)

    @classmethod
    def of(cls, image: SyntheticImage) -> Pixels:
        """The pixels as written (decoded from the PNG bytes), not as rendered in memory."""
        return cls(image.scene, Image.open(io.BytesIO(image.png)))

    def _mask(self, box: Box, entity: Entity | None = None) -> np.ndarray:
        """The pixels of `box` that `entity` itself covers (all covered ones without an entity).

        An object drawn inside a container (so, over it) covers the pixels it covers when drawn
        alone; a container's own pixels leave out the objects inside it.
        """
        mask = np.zeros_like(self.covered)
        if entity is not None and entity.container is not None:
            alone = np.asarray(render(replace(self.scene, entities=(entity,))))
            background = np.asarray(render_background(SETTINGS[self.scene.setting]))
            mask[box.y0:box.y1, box.x0:box.x1] = (
                alone != background).any(axis=2)[box.y0:box.y1, box.x0:box.x1]
            return mask
        mask[box.y0:box.y1, box.x0:box.x1] = self.covered[box.y0:box.y1, box.x0:box.x1]
        for child in self.scene.children(entity.key) if entity else []:
            b = child.bbox
            mask[b.y0:b.y1, b.x0:b.x1] = False
        return mask

    def share(self, entity: Entity, rgb: tuple[int, int, int], box: Box | None = None) -> float:
        """Fraction of the entity's own covered pixels that have exactly colour `rgb`."""
        mask = self._mask(box or entity.bbox, entity)
        hits = (self.rgb[mask] == np.array(rgb)).all(axis=1)
        return float(hits.mean()) if hits.size else 0.0

    def area(self, entity: Entity) -> int:
        """Pixels the entity itself shows (a container's leave out its inside-object's box)."""
        return int(self._mask(entity.bbox, entity).sum())

    def pattern_matches(self, entity: Entity, texture: str) -> bool:
        """Whether the white pattern pixels on the entity's body are exactly `texture`'s.

        Only body pixels the entity shows count: not its parts (drawn over the pattern), not an
        inside-object's box.
        """
        assert entity.color is not None
        own = self._mask(entity.bbox, entity)
        for box in entity.boxes:
            body, parts = shape(entity.kind, box.width)
            visible = np.asarray(body) > 0
            for part, _ in parts:
                visible &= ~(np.asarray(part) > 0)
            visible &= own[box.y0:box.y1, box.x0:box.x1]
            drawn = (self.rgb[box.y0:box.y1, box.x0:box.x1] == PATTERN).all(axis=2)
            tile = np.asarray(texture_tile(texture, COLORS[entity.color], box.width))
            if not np.array_equal(drawn[visible], (tile == PATTERN).all(axis=2)[visible]):
                return False
        return True

    def encloses(self, container: Entity, child: Entity) -> bool:
        """Whether the container's own pixels (its colour or pattern) ring the child's box."""
        assert container.color is not None
        b = child.bbox
        ring = ([(x, y) for x in range(b.x0 - 1, b.x1 + 1) for y in (b.y0 - 1, b.y1)]
                + [(x, y) for y in range(b.y0, b.y1) for x in (b.x0 - 1, b.x1)])
        own = {COLORS[container.color], PATTERN}
        return all(tuple(int(v) for v in self.rgb[y, x]) in own for x, y in ring)

    def cell_bbox(self, entity: Entity) -> Box:
        """Bounding box of the covered pixels in the entity's grid cell."""
        x0, x1 = (0, CANVAS // 2) if entity.cell[1] == 0 else (CANVAS // 2, CANVAS)
        y0, y1 = (0, 143) if entity.cell[0] == 0 else (143, CANVAS)
        ys, xs = np.nonzero(self.covered[y0:y1, x0:x1])
        return Box(int(xs.min()) + x0, int(ys.min()) + y0, int(xs.max()) + x0 + 1,
                   int(ys.max()) + y0 + 1)

    def extent(self, box: Box) -> int:
        """The larger side of the covered pixels' bounding box within `box`."""
        ys, xs = np.nonzero(self.covered[box.y0:box.y1, box.x0:box.x1])
        return int(max(xs.max() - xs.min(), ys.max() - ys.min())) + 1

    def column_runs(self, entity: Entity) -> int:
        """Objects side by side in a row: runs of covered columns separated by background."""
        box = entity.bbox
        columns = self.covered[box.y0:box.y1, box.x0:box.x1].any(axis=0)
        return int(columns[0]) + int(np.sum(columns[1:] & ~columns[:-1]))

    def word_matches(self, entity: Entity, word: str) -> bool:
        assert entity.text_color is not None
        text = sign_layout(entity.bbox).text
        drawn = (self.rgb[text.y0:text.y1, text.x0:text.x1]
                 == np.array(TEXT_COLORS[entity.text_color])).all(axis=2)
        expected = np.asarray(text_mask(word)) > 0
        return drawn.shape == expected.shape and bool((drawn == expected).all())


def _holds(scene: Scene, subject: str, place: Place, pixels: Pixels | None = None) -> bool:
    entity = scene.get(subject)
    box = entity.bbox if pixels is None or entity.container else pixels.cell_bbox(entity)
    if place.relation == "at":
        return quadrant_of(box) == place.target
    anchor = scene.get(place.target)
    other = anchor.bbox if pixels is None or anchor.container else pixels.cell_bbox(anchor)
    return holds(place.relation, box, other)


# --- the value of a fact in the image -----------------------------------------------------------


def check_truth(scene: Scene, pixels: Pixels, fact: Fact) -> None:
    """`fact.truth` is what the graph holds and what the pixels show."""
    a = fact.attribute
    if a == "existence":
        if fact.truth:
            entity = scene.get(fact.subject)
            assert entity.kind == fact.kind
            assert pixels._mask(entity.bbox).any()
        else:  # fabricated: no such object, nor one that looks like it
            assert fact.kind not in scene.kinds
            assert not any(frozenset((fact.kind, k)) in CONFUSABLE_KINDS for k in scene.kinds)
        return
    if a == "style":  # every image is a flat illustration
        assert fact.truth is True
        return
    if a in ("setting", "background"):
        setting = SETTINGS[scene.setting]
        corner, floor = tuple(pixels.rgb[5, 5]), tuple(pixels.rgb[CANVAS - 4, 5])
        assert corner == setting.top
        assert floor == setting.bottom
        if a == "setting":
            assert fact.truth == scene.setting
        return
    entity = scene.get(fact.subject)
    if a == "count":
        assert entity.count == fact.truth == len(entity.boxes)
        if entity.container is None:
            assert pixels.column_runs(entity) == fact.truth
    elif a == "color":
        assert entity.color == fact.truth
        assert pixels.share(entity, COLORS[fact.truth]) > 0.1
    elif a == "size":
        assert entity.size == fact.truth
        assert all(b.width == b.height == SIZES[fact.truth] for b in entity.boxes)
        if entity.container is None:  # each object spans (nearly) its whole box
            assert all(SIZES[fact.truth] - 4 <= pixels.extent(b) <= SIZES[fact.truth]
                       for b in entity.boxes)
    elif a == "texture":
        assert entity.texture == fact.truth
        white = pixels.share(entity, PATTERN)
        assert white == 0.0 if fact.truth == "solid" else white > 0.05
        assert pixels.pattern_matches(entity, fact.truth)
    elif a == "place":
        assert _holds(scene, fact.subject, fact.truth)
        assert _holds(scene, fact.subject, fact.truth, pixels)
    elif a == "word":
        assert entity.word == fact.truth
        assert pixels.word_matches(entity, fact.truth)
    elif a == "text_color":
        assert entity.text_color == fact.truth
        assert pixels.share(entity, TEXT_COLORS[fact.truth], sign_layout(entity.bbox).text) > 0.1
    elif a == "part":
        assert fact.part in PARTS[entity.kind]
        if fact.part in PART_COLORS:
            assert pixels.share(entity, PART_COLORS[fact.part]) > 0.01
    else:
        raise AssertionError(f"unchecked attribute {a}")


def check_false(scene: Scene, pixels: Pixels, fact: Fact, value: Any) -> None:
    """A wrong value stated by one side is false of the graph and, where checkable, the pixels."""
    a = fact.attribute
    assert value != fact.truth
    if a == "place":
        assert not _holds(scene, fact.subject, value)
        assert not _holds(scene, fact.subject, value, pixels)
        return
    if a in ("existence", "setting"):
        if a == "setting":
            other = SETTINGS[value]
            assert (other.top, other.bottom) != (tuple(pixels.rgb[5, 5]),
                                                 tuple(pixels.rgb[CANVAS - 4, 5]))
        return
    entity = scene.get(fact.subject)
    if a == "color":
        assert pixels.share(entity, COLORS[value]) == 0.0
    elif a == "count":
        assert len(entity.boxes) != value
        if entity.container is None:
            assert pixels.column_runs(entity) != value
    elif a == "word":
        assert not pixels.word_matches(entity, value)
    elif a == "size":
        assert entity.size != value
        if entity.container is None:  # the objects' extent is not the wrong size's
            assert all(pixels.extent(b) > SIZES[value] or pixels.extent(b) < SIZES[value] - 4
                       for b in entity.boxes)
    elif a == "texture":
        assert entity.texture != value
        # "plain" is false where there are pattern pixels; another pattern is not what is drawn
        if value == "solid":
            assert pixels.share(entity, PATTERN) > 0.05
        assert not pixels.pattern_matches(entity, value)


def check_sides(fact: Fact, judgment: Judgment) -> None:
    """The side the judgment supports states the truth; the other is silent or wrong."""
    if judgment is Judgment.REFERENCE:
        if fact.reference is None:  # rightly silent about something that is not there
            assert fact.truth is False
            assert fact.actor is True
        else:
            assert fact.reference == fact.truth
        if fact.hedged:
            assert fact.truth in fact.actor
            assert fact.actor[0] != fact.actor[1]
        else:
            assert fact.actor != fact.truth
    elif judgment is Judgment.ACTOR:
        if fact.actor is None:  # rightly silent about something that is not there
            assert fact.truth is False
            assert fact.reference is True
        else:
            assert fact.actor == fact.truth
            assert fact.reference != fact.truth
    else:
        assert judgment is Judgment.BOTH_WRONG
        assert fact.actor is not None
        assert fact.reference is not None
        assert fact.truth not in (fact.actor, fact.reference)


# --- tests --------------------------------------------------------------------------------------


def _files(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, bytes]:
    return {p.removeprefix(root): fs.cat_file(p) for p in sorted(fs.find(root))}


def test_same_seed_writes_identical_files(tmp_path: Path):
    first = write_synthetic(str(tmp_path / "a"), n=6, seed=3)
    write_synthetic(str(tmp_path / "b"), n=6, seed=3)
    write_synthetic(str(tmp_path / "c"), n=6, seed=4)
    fs = fsspec.filesystem("file")
    a, b, c = (_files(fs, str(tmp_path / name)) for name in "abc")
    assert first == str(tmp_path / "a" / "manifest.jsonl")
    assert set(a) == {"/manifest.jsonl", "/scenes.jsonl",
                      *(f"/images/scene_{i:05d}.png" for i in range(6))}
    assert a == b
    assert a["/manifest.jsonl"] != c["/manifest.jsonl"]


_DIGEST = """
import hashlib, fsspec
from claimdiff.synth import write_synthetic
write_synthetic("memory://digest", n=4, seed=7)
fs = fsspec.filesystem("memory")
h = hashlib.sha256()
for path in sorted(fs.find("/digest")):
    h.update(path.encode()); h.update(fs.cat_file(path))
print(h.hexdigest())
"""


def test_same_output_in_other_processes():
    # string hashing is salted per process: any set- or hash-order dependence shows up here
    digests = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        result = subprocess.run([sys.executable, "-c", _DIGEST], capture_output=True, text=True,
                                env=env, check=True, cwd=Path(__file__).parents[1])
        digests.add(result.stdout.strip())
    assert len(digests) == 1


def test_an_image_does_not_depend_on_n(images: list[SyntheticImage]):
    for small, large in zip(generate(5, seed=0), images[:5], strict=True):
        assert small.png == large.png
        assert [r.record for r in small.rows] == [r.record for r in large.rows]


def test_memory_output_reads_back_as_a_manifest():
    manifest = write_synthetic("memory://synth-test/out", n=5, seed=1, edits_per_image=2)
    assert manifest == "memory://synth-test/out/manifest.jsonl"
    rows = list(iter_manifest(manifest))
    # the clean caption and two edits per image, plus a clean row per both-wrong sample
    expected = [r.record for image in generate(5, seed=1, edits_per_image=2) for r in image.rows]
    assert [record for _, record in rows] == json.loads(json.dumps(expected))
    assert len(rows) >= 5 * 3
    for index, record in rows:
        assert isinstance(record, dict)
        row = validate_row(record, manifest=manifest, row_index=index, allowed_schemes=SCHEMES)
        assert row.image_uri.startswith("memory://synth-test/out/images/")
        with fsspec.open(row.image_uri, "rb") as handle:
            assert Image.open(handle).size == (CANVAS, CANVAS)
    with fsspec.open("memory://synth-test/out/scenes.jsonl", "rt") as handle:
        assert len(handle.read().splitlines()) == 5


def test_rows_validate(images: list[SyntheticImage], tmp_path: Path):
    manifest = str(tmp_path / "manifest.jsonl")
    for index, (image, row) in enumerate(_rows(images)):
        record = json.loads(json.dumps(row.record))
        valid = validate_row(record, manifest=manifest, row_index=index, allowed_schemes=SCHEMES)
        assert JudgeOutput.model_validate_json(valid.gold or "") == JudgeOutput.model_validate(
            record["gold"])
        assert json.loads(valid.metadata or "{}").keys() == {"edit", "edit_severity",
                                                             "edit_outcome"}
        assert valid.sample_id.startswith(f"synth-0-{image.index:05d}")
        assert valid.image == image.path


def test_every_edit_kind_appears(images: list[SyntheticImage]):
    counts = Counter(row.record["edit"] for _, row in _rows(images))
    assert set(counts) == {*EDIT_KINDS, "none", "clean_vs_wrong_reference"}
    assert counts["none"] == N
    # kinds are balanced: each close to its share of the edited rows (the clean captions of
    # both-wrong samples are clean_vs_wrong_reference rows on top). The kinds few scenes allow lag a
    # little: wrong_setting needs a named setting without background details (~30% of scenes).
    edited = Counter(row.record["edit"] for _, row in _rows(images)
                     if row.record["actor_id"] != CLEAN)
    assert min(edited[k] for k in EDIT_KINDS) >= N * 3 // len(EDIT_KINDS) * 0.8


def _samples(image: SyntheticImage) -> dict[str, list[dict[str, Any]]]:
    by_sample: dict[str, list[dict[str, Any]]] = {}
    for row in image.rows:
        by_sample.setdefault(row.record["sample_id"], []).append(row.record)
    return by_sample


def test_one_clean_row_per_image_with_no_differences(images: list[SyntheticImage]):
    for image in images:
        clean = [r.record for r in image.rows if r.edit is None]
        assert len(clean) == 1
        assert clean[0]["actor_id"] == CLEAN
        assert clean[0]["sample_id"] == f"synth-0-{image.index:05d}"
        assert clean[0]["gold"] == {"differences": [], "overall": "tie"}
        assert clean[0]["edit_severity"] == 0


def test_actor_ids_name_the_edit_and_are_unique_per_sample(images: list[SyntheticImage]):
    for image in images:
        for records in _samples(image).values():
            actors = [r["actor_id"] for r in records]
            assert len(set(actors)) == len(actors)
            assert all(a == CLEAN or a == f"edit-{r['edit']}" for a, r in zip(actors, records,
                                                                             strict=True))


def test_a_corrupted_reference_is_its_own_sample(images: list[SyntheticImage]):
    # both_wrong gets the clean caption under the same wrong reference, so the ordering check
    # compares the two; reference_error / reference_hallucination rows are themselves clean
    kinds: Counter[str] = Counter()
    for image in images:
        (clean,) = (r.record for r in image.rows if r.edit is None)
        for sample, records in _samples(image).items():
            if sample == clean["sample_id"]:
                assert all(r["reference"] == clean["reference"] for r in records)
                continue
            assert re.fullmatch(rf"{clean['sample_id']}-r\d", sample)
            edited = next(r for r in records if r["actor_id"] != CLEAN)
            kinds[edited["edit"]] += 1
            assert edited["edit"] in ("both_wrong", "reference_error", "reference_hallucination")
            assert edited["reference"] != clean["reference"]
            if edited["edit"] != "both_wrong":
                assert len(records) == 1
                continue
            (counterpart,) = (r for r in records if r["actor_id"] == CLEAN)
            assert counterpart["caption"] == clean["caption"]
            assert counterpart["reference"] == edited["reference"]
            assert counterpart["edit"] == "clean_vs_wrong_reference"
            assert counterpart["edit_outcome"] == "reference_error"
            (a,), (b,) = counterpart["gold"]["differences"], edited["gold"]["differences"]
            assert (a["aspect"], a["reference_claim"]) == (b["aspect"], b["reference_claim"])
            assert (a["judgment"], b["judgment"]) == ("actor", "both_wrong")
            assert a["reference_error"]["severity"] == b["actor_error"]["severity"]
    assert set(kinds) == {"both_wrong", "reference_error", "reference_hallucination"}


def test_captions_carry_no_template_leftovers(images: list[SyntheticImage]):
    texts, aspects = [], []
    for _, row in _rows(images):
        texts += [row.record["reference"], row.record["caption"]]
        for difference in row.record["gold"]["differences"]:
            texts += [t for k, t in difference.items() if k.endswith(("claim", "span"))
                      and t is not None]
            aspects.append(difference["aspect"])
    for text in texts + aspects:
        assert not any(marker in text for marker in MARKERS), text
    for text in texts:
        assert text[:1].upper() == text[:1], text
        assert text.endswith("."), text
        assert not BAD_GRAMMAR.search(text), text
        assert ",." not in text
        assert ", ," not in text


def test_references_are_long_and_varied(images: list[SyntheticImage]):
    references = {r.record["reference"] for _, r in _rows(images) if r.edit is None}
    assert all(len(ref.split(". ")) >= 3 for ref in references)
    openings = Counter(" ".join(ref.split()[:2]) for ref in references)
    assert len(openings) >= 8
    assert max(openings.values()) < len(references) / 3


def test_hedges_only_where_edited(images: list[SyntheticImage]):
    hedges = ClaimdiffConfig().rewards.hedges
    for _, row in _rows(images):
        assert count_hedges(row.record["reference"], hedges) == 0
        assert (count_hedges(row.record["caption"], hedges) > 0) == (row.record["edit"] == "hedge")


def test_outcomes_are_as_intended(images: list[SyntheticImage]):
    for _, row in _rows(images):
        if row.edit is None:
            continue
        gold = JudgeOutput.model_validate(row.record["gold"])
        assert len(gold.differences) == 1
        d = gold.differences[0]
        assert d.confidence == 1.0
        outcomes = outcomes_of(difference_kind(d.actor_claim, d.reference_claim), d.judgment)
        assert outcomes == INTENDED_OUTCOMES[row.edit.kind]
        assert row.record["edit_outcome"] == "+".join(o.value for o in outcomes)
        expected_overall = {Judgment.ACTOR: "actor", Judgment.REFERENCE: "reference",
                            Judgment.BOTH_WRONG: "tie"}[d.judgment]
        assert gold.overall is not None
        assert gold.overall.value == expected_overall
        # exactly the sides that err carry an error
        assert (d.actor_error is not None) == (d.judgment in (Judgment.REFERENCE,
                                                              Judgment.BOTH_WRONG))
        assert (d.reference_error is not None) == (
            d.judgment in (Judgment.ACTOR, Judgment.BOTH_WRONG) and d.reference_claim is not None)


def test_error_types_map_to_the_intended_canonical_type(images: list[SyntheticImage]):
    mapper = TypeMapper(TaxonomyConfig())
    for _, row in _rows(images):
        if row.edit is None:
            continue
        for error in (row.edit.actor_error, row.edit.reference_error):
            if error is not None:
                assert mapper.canonical(error.type) == row.edit.canonical, error.type


def test_severity_follows_salience(images: list[SyntheticImage]):
    fixed = {"hallucinated_object": 3, "wrong_count": 3, "wrong_relation": 3,
             "reference_hallucination": 3, "wrong_text": 2, "wrong_setting": 2,
             "wrong_material": 1, "omit_peripheral": 1, "extra_detail": 0}
    for image, row in _rows(images):
        edit = row.edit
        if edit is None:
            continue
        assert row.record["edit_severity"] == edit.severity
        if edit.kind in fixed:
            assert edit.severity == fixed[edit.kind], edit.kind
        main = edit.fact.subject == image.scene.main
        if edit.kind in ("wrong_color", "wrong_size"):
            assert edit.severity == (3 if main else 2)
        if edit.kind == "omit_salient":
            assert edit.severity == (3 if main else 2)
        if edit.kind == "hedge":
            assert edit.severity == (2 if main or edit.fact.attribute == "count" else 1)


def test_spans_are_verbatim_sentences(images: list[SyntheticImage]):
    for _, row in _rows(images):
        for d in row.record["gold"]["differences"]:
            assert (d["actor_span"] is None) == (d["actor_claim"] is None)
            assert (d["reference_span"] is None) == (d["reference_claim"] is None)
            if d["actor_span"]:
                assert d["actor_span"] in row.record["caption"]
            if d["reference_span"]:
                assert d["reference_span"] in row.record["reference"]


def _words(fact: Fact, value: Any) -> str | None:
    """A word the claim for `value` must contain, where one is easy to name."""
    if fact.attribute == "count":
        return NUMBERS[value] if value > 1 else None  # one is "a" in captions
    if fact.attribute in ("color", "size", "text_color"):
        return str(value)
    if fact.attribute == "word":
        return f'"{value}"'
    return None


def test_gold_is_true_of_the_image(images: list[SyntheticImage]):
    checked: Counter[str] = Counter()
    for image in images:
        pixels = Pixels.of(image)
        for row in image.rows:
            if row.edit is None:
                continue
            fact, d = row.edit.fact, row.record["gold"]["differences"][0]
            check_sides(fact, Judgment(d["judgment"]))
            check_truth(image.scene, pixels, fact)
            for value, claim, span in ((fact.actor, d["actor_claim"], d["actor_span"]),
                                       (fact.reference, d["reference_claim"],
                                        d["reference_span"])):
                if value is None:
                    continue
                options = value if fact.hedged and isinstance(value, tuple) else (value,)
                # a hedge names the truth and one wrong option: that option must be false too
                for wrong in (v for v in options if v != fact.truth):
                    check_false(image.scene, pixels, fact, wrong)
                    checked[f"false {fact.attribute}{' (hedged)' if fact.hedged else ''}"] += 1
                for v in options:
                    word = _words(fact, v)
                    assert word is None or (word.lower() in claim.lower()
                                            and word.lower() in span.lower()), (claim, span)
            checked[fact.attribute] += 1
    assert {"existence", "count", "color", "size", "texture", "place", "word", "setting",
            "part", "false texture", "false color (hedged)", "false count (hedged)"} <= set(checked)


def test_pixels_agree_with_the_scene_graph(images: list[SyntheticImage]):
    for image in images:
        pixels = Pixels.of(image)
        for entity in image.scene.entities:
            if entity.container is None:
                found = pixels.cell_bbox(entity)
                assert found.within(entity.bbox)
                if not entity.is_sign:
                    assert pixels.column_runs(entity) == entity.count
            if entity.is_sign:
                assert entity.word is not None
                assert pixels.word_matches(entity, entity.word)
            else:
                assert entity.color is not None
                assert pixels.share(entity, COLORS[entity.color]) > 0.1


def test_inside_objects_are_enclosed_by_their_container(images: list[SyntheticImage]):
    inside = 0
    for image in images:
        pixels = Pixels.of(image)
        for child in (e for e in image.scene.entities if e.container is not None):
            container = image.scene.get(child.container or "")
            assert holds("inside", child.bbox, container.bbox)
            # in the pixels: what the child draws lies in its box, and the container's own
            # colour or pattern surrounds that box on every side
            drawn = pixels._mask(child.bbox, child)
            assert drawn.any()
            ys, xs = np.nonzero(drawn)
            found = Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            assert found.within(child.bbox)
            assert found.within(pixels.cell_bbox(container))
            assert pixels.encloses(container, child)
            inside += 1
    assert inside >= 3


SALIENCE_SCENES = 300


def test_main_group_is_the_only_large_one_and_covers_the_most_pixels():
    # over many seeds: severity 3 for the main subject must be visible, not only stated
    shares = []
    for index in range(SALIENCE_SCENES):
        scene = sample_scene(random.Random(f"salience/{index}"), index)
        pixels = Pixels(scene, render(scene))
        groups = [e for e in scene.entities if not e.is_sign]
        main = scene.get(scene.main)
        assert main.size == "large"
        assert all(g.size == "small" for g in groups if g.key != scene.main)
        others = [pixels.area(g) for g in groups if g.key != scene.main]
        shares.append(max(others) / pixels.area(main))
    assert max(shares) <= MAIN_AREA_SHARE


def test_gold_derives_to_the_intended_statistics(images: list[SyntheticImage], tmp_path: Path):
    # through the project's own derivation, as the labels judge would feed it
    config = ClaimdiffConfig()
    mapper = TypeMapper(config.taxonomy)
    provenance = Provenance(run_id="r", image_sha256="0" * 64, judge_model="labels",
                            prompt_version="p", decoding=decoding_params(config.judge),
                            cache_key="k", attempts=1)
    manifest = str(tmp_path / "manifest.jsonl")
    for index, (_, row) in enumerate(_rows(images[:20])):
        valid = validate_row(row.record, manifest=manifest, row_index=index,
                             allowed_schemes=SCHEMES)
        output = JudgeOutput.model_validate_json(valid.gold or "")
        differences, stats = derive(valid, output, provenance, config, mapper)
        edit = row.edit
        if edit is None:
            assert differences == []
            continue
        (difference,) = differences
        assert tuple(difference.outcomes) == INTENDED_OUTCOMES[edit.kind]
        for canonical, severity in ((difference.actor_canonical_type, difference.actor_severity),
                                    (difference.reference_canonical_type,
                                     difference.reference_severity)):
            if canonical is not None:
                assert canonical == edit.canonical
                assert severity == edit.severity
        assert (stats.actor_errors > 0) == (edit.actor_error is not None)
        assert (stats.reference_errors > 0) == (edit.reference_error is not None)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        list(generate(-1))
    with pytest.raises(ValueError, match="edits_per_image"):
        list(generate(1, edits_per_image=len(EDIT_KINDS) + 1))


def test_a_manifest_digest_is_stable_within_a_run():
    # cheap guard that rendering itself (fonts, caches) is repeatable in one process
    first = hashlib.sha256(next(iter(generate(1, seed=11))).png).hexdigest()
    second = hashlib.sha256(next(iter(generate(1, seed=11))).png).hexdigest()
    assert first == second
