"""Synthetic diagnostic scenes: rendered images, reference captions and actors with known edits.

Each image is drawn with Pillow from a random scene graph (`scene`, `render`): objects of several
kinds with a colour, a size, a fill pattern and a count, placed so that left/right/above/below,
next to and inside can be checked from their boxes; a sign with a word; and an indoor or outdoor
setting. The main group (the primary subject) is the only large group and covers the most pixels
of any group. The fill pattern (plain, striped, dotted, checkered) is the scenes' material-like
texture: `wrong_material` edits it, and its error types (`texture_*`) map to `material`.

The reference caption states the graph in varied sentences (`captions`). Each actor caption is
the reference's claims with one controlled edit (`edits`) — or none, for the clean caption — and
the edit is recorded as the gold difference in the judge output format, so the `labels` judge,
the rewards and any real judge can be measured against known answers.

Edit kinds, their outcome, and severity (by salience: see `edits`):

| edit | difference | judgment | outcome | severity |
|---|---|---|---|---|
| hallucinated_object | actor only | reference | actor_hallucination | 3 |
| wrong_count | conflict | reference | actor_hallucination | 3 |
| wrong_color / wrong_size | conflict | reference | actor_hallucination | 3 main, else 2 |
| wrong_material (pattern) | conflict | reference | actor_hallucination | 1 |
| wrong_relation | conflict | reference | actor_hallucination | 3 |
| wrong_text (sign) | conflict | reference | actor_hallucination | 2 |
| wrong_setting | conflict | reference | actor_hallucination | 2 |
| hedge ("possibly red or blue") | conflict | reference | actor_hallucination | fact - 1 |
| omit_salient (object, sign, setting) | ref. only | reference | actor_omission | 3 main, else 2 |
| omit_peripheral (pattern, part, ...) | reference only | reference | actor_omission | 1 |
| extra_detail | actor only | actor | actor_extra_correct | none |
| reference_error | conflict | actor | reference_error | by the fact |
| reference_hallucination | reference only | actor | reference_hallucination | 3 |
| both_wrong (count, colour) | conflict | both_wrong | actor_hallucination, reference_error | 3/2 |

Actors are `clean` and `edit-<kind>` (kinds are distinct within an image). Rows whose reference
carries the error get their own `sample_id` (`<image sample>-r<slot>`): a different reference
text is a different (image, reference) pair. A both-wrong sample also holds the clean caption
judged against that wrong reference (a `reference_error` row, actor `clean`), so the reward
ordering compares clean against both-wrong; the other reference-side edits leave the actor true,
so their sample's one row is already clean (see `generate`).
"""

from __future__ import annotations

from claimdiff.synth.edits import EDIT_KINDS, INTENDED_OUTCOMES
from claimdiff.synth.generate import SyntheticImage, SyntheticRow, generate
from claimdiff.synth.writer import write_synthetic

__all__ = [
    "EDIT_KINDS",
    "INTENDED_OUTCOMES",
    "SyntheticImage",
    "SyntheticRow",
    "generate",
    "write_synthetic",
]
