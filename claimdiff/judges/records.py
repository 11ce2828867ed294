"""What flows into and out of the judge: one request per row, one result per request."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from claimdiff.io.images import ImageRef, LoadedImage
from claimdiff.schemas.judge import JudgeOutput, Judgment
from claimdiff.schemas.rows import InputRow, Stage, SwapCheck


@dataclass(frozen=True)
class JudgeItem:
    """One row to judge: the row, its image, the rendered first-pass prompt, and the cache key
    (the run's constants live in its `JudgeSetup`, not on every item).

    The image is decoded (`LoadedImage`) for a row that goes to the judge; a row whose answer
    is reused from an earlier run holds only its `ImageRef` (no pixels were decoded for it)."""

    row: InputRow
    image: ImageRef
    prompt: str
    cache_key: str

    @property
    def pixels(self) -> Image.Image:
        """The decoded image a judge request carries."""
        if not isinstance(self.image, LoadedImage):
            raise TypeError(f"{self.row.manifest} row {self.row.row_index}: its image was not "
                            "decoded (its answer was reused), so it cannot go to a judge")
        return self.image.image


@dataclass(frozen=True)
class JudgeResult:
    """The answer to one `JudgeItem`: a validated output, or the error and the raw text.

    In two-pass mode `output` holds the final judgments, `first_judgments` the first pass's,
    `verify_raw` the verification answers; a swap check is attached where the row was in the
    position-swap sample, a holistic score where a holistic preset asked for one (None where
    that call failed: a null holistic reward, the row stands).
    """

    item: JudgeItem
    output: JudgeOutput | None
    raw_output: str | None
    attempts: int
    finish_reason: str | None = None
    error_class: str | None = None
    error: str | None = None
    stage: Stage = Stage.JUDGE
    first_judgments: tuple[Judgment, ...] | None = None
    verify_disagreements: int = 0
    verify_raw: tuple[str, ...] | None = None
    swap: SwapCheck | None = None
    holistic_score: int | None = None
    holistic_raw: str | None = None
    # the run whose judge call gave this answer, where it was reused from an earlier run's
    # `answers/` (None: judged by this run)
    judged_in: str | None = None

    @property
    def ok(self) -> bool:
        return self.output is not None
