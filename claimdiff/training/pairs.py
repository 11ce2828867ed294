"""`claimdiff pairs`: DPO preference pairs per sample, in TRL's conversational vision format.

Within one sample (one image with one reference: rewards under different references are not on
one scale), every two scored captions are a candidate pair, the higher reward chosen. A candidate
is dropped, and counted, when its rewards tie (`tie`), its two captions are the same text up to
whitespace (`identical_text`: chosen == rejected never occurs), or its margin is under
`min_margin` (`below_margin`). `best_vs_worst` keeps the remaining pair of widest margin (the
best caption against the worst, unless those two read the same), `all_pairs` keeps every
remaining pair (the widest `max_pairs_per_sample` of them, if set; the rest `over_limit`). Ties
between equal margins go to the caption earlier in the manifest. Rows without a reward are
dropped (`failed`, `null_reward`), and so are whole samples with fewer than two scored captions
(`single_caption`, `no_scored_caption`), without any pair at the margin (`no_pair`), or whose
image cannot be read back unchanged (`image_unreadable`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from claimdiff.config import ImageConfig
from claimdiff.errors import ConfigError, ImageError
from claimdiff.training.export import (
    ExportSummary,
    ShardWriter,
    counts,
    finish,
    new_summary,
    prepare_output,
)
from claimdiff.training.formats import HFImage, Message, assistant_turn, user_prompt
from claimdiff.training.groups import (
    DEFAULT_BUCKET_ROWS,
    CaptionRow,
    SampleGroup,
    check_run,
    iter_groups,
    load_image,
    note_image_error,
    run_presets,
)

DEFAULT_PROMPT = "Describe this image in detail."
# rewards are computed from the same statistics in the same order, so equal ones are bit-equal;
# the tolerance only keeps 0.3 - 0.2 from falling under a margin of 0.1
_EPS = 1e-9


class ExportOptions(BaseModel):
    """What every training export shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(default=DEFAULT_PROMPT, min_length=1,
                        description="the user instruction placed after the image")
    embed_images: bool = Field(
        default=True, description="write each image's bytes into the rows (self-contained "
        "dataset); false writes only the resolved image URI, which must then stay readable")
    rows_per_shard: int = Field(default=500, ge=1, description="rows per Parquet shard")
    bucket_rows: int = Field(
        default=DEFAULT_BUCKET_ROWS, ge=1, description="rewards/ rows grouped in memory at once; "
        "larger runs are hash-partitioned by sample into local buckets first")
    images: ImageConfig = Field(default_factory=ImageConfig,
                                description="bounds and allowed schemes for reading images")


class PairsConfig(ExportOptions):
    """`claimdiff pairs`: which rewards make a preference pair."""

    preset: str | None = Field(
        default=None, description="reward preset compared (default: the run's primary)")
    min_margin: float = Field(default=0.1, ge=0.0,
                              description="least reward difference between chosen and rejected")
    strategy: Literal["best_vs_worst", "all_pairs"] = Field(
        default="best_vs_worst",
        description="one pair per sample (widest margin), or every pair at the margin")
    max_pairs_per_sample: int | None = Field(
        default=None, ge=1, description="all_pairs: keep at most this many, widest first")


class PairRow(BaseModel):
    """One row of `pairs/`: TRL's vision preference columns, then ids and rewards."""

    images: list[HFImage]
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    sample_id: str
    run_id: str
    preset: str
    chosen_reward: float
    rejected_reward: float
    margin: float
    chosen_actor_id: str
    rejected_actor_id: str
    chosen_manifest: str
    chosen_row_index: int
    rejected_manifest: str
    rejected_row_index: int
    # not `image`: TRL reads a column of that name as the example's single image
    image_path: str = Field(description="image URI as written in the manifest")
    image_uri: str = Field(description="image URI resolved against the manifest")
    reference: str


@dataclass(frozen=True)
class Pair:
    chosen: CaptionRow
    rejected: CaptionRow
    chosen_reward: float
    rejected_reward: float

    @property
    def margin(self) -> float:
        return self.chosen_reward - self.rejected_reward


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def scored_rows(group: SampleGroup, preset: str, dropped_rows: Counter[str]
                ) -> list[tuple[CaptionRow, float]]:
    """The group's rows that have a finite reward for `preset`; the others counted by reason."""
    scored = []
    for row in group.rows:
        value = row.reward(preset)
        if value is None:
            dropped_rows["failed" if not row.ok else "null_reward"] += 1
        else:
            scored.append((row, value))
    return scored


def select_pairs(scored: list[tuple[CaptionRow, float]], config: PairsConfig,
                 dropped_pairs: Counter[str]) -> list[Pair]:
    """The pairs of one sample, widest margin first; every candidate not kept is counted."""
    eligible: list[tuple[float, int, int, Pair]] = []
    for (i, (a, ra)), (j, (b, rb)) in itertools.combinations(enumerate(scored), 2):
        if abs(ra - rb) <= _EPS:
            dropped_pairs["tie"] += 1
            continue
        if _same_text(a.caption, b.caption):
            dropped_pairs["identical_text"] += 1
            continue
        pair = Pair(a, b, ra, rb) if ra > rb else Pair(b, a, rb, ra)
        if pair.margin < config.min_margin - _EPS:
            dropped_pairs["below_margin"] += 1
            continue
        order = (i, j) if ra > rb else (j, i)
        eligible.append((-pair.margin, *order, pair))
    eligible.sort(key=lambda e: e[:3])
    limit = 1 if config.strategy == "best_vs_worst" else config.max_pairs_per_sample
    kept = eligible if limit is None else eligible[:limit]
    if len(eligible) > len(kept):
        dropped_pairs["not_best" if config.strategy == "best_vs_worst" else "over_limit"] += (
            len(eligible) - len(kept))
    return [e[3] for e in kept]


def _row(group: SampleGroup, pair: Pair, image: HFImage, preset: str, prompt: str) -> PairRow:
    return PairRow(
        images=[image], prompt=user_prompt(prompt), chosen=assistant_turn(pair.chosen.caption),
        rejected=assistant_turn(pair.rejected.caption), sample_id=group.sample_id,
        run_id=group.run_id, preset=preset, chosen_reward=pair.chosen_reward,
        rejected_reward=pair.rejected_reward, margin=pair.margin,
        chosen_actor_id=pair.chosen.actor_id, rejected_actor_id=pair.rejected.actor_id,
        chosen_manifest=pair.chosen.manifest, chosen_row_index=pair.chosen.row_index,
        rejected_manifest=pair.rejected.manifest, rejected_row_index=pair.rejected.row_index,
        image_path=group.image, image_uri=group.image_uri, reference=group.reference)


def resolve_preset(run: str, preset: str | None) -> str:
    """The preset to read: the one named (it must be on the run's rows), else the primary."""
    presets = run_presets(run)
    if preset is None:
        from claimdiff.pipelines.outputs import read_run_manifest

        try:
            preset = str(read_run_manifest(run).config["rewards"]["primary"])
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"cannot tell the run's primary preset from {run}/run.json; "
                              f"name one with --preset ({exc})") from exc
    if presets and preset not in presets:
        raise ConfigError(f"preset {preset!r} is not in the run's rewards: {presets}")
    return preset


def export_pairs(run: str, output: str, config: PairsConfig, *, overwrite: bool = False
                 ) -> ExportSummary:
    """Write `output/part-*.parquet` and `output.json` (see the module docstring)."""
    rows_read = check_run(run)
    preset = resolve_preset(run, config.preset)
    prepare_output(output, overwrite=overwrite)
    writer = ShardWriter(output, PairRow, config.rows_per_shard)
    dropped_rows: Counter[str] = Counter()
    dropped_samples: Counter[str] = Counter()
    dropped_pairs: Counter[str] = Counter()
    image_errors: list[str] = []
    samples = used = candidates = 0
    for group in iter_groups(run, config.bucket_rows):
        samples += 1
        if not group.consistent:
            dropped_samples["inconsistent_sample"] += 1
            dropped_rows["inconsistent_sample"] += len(group.rows)
            continue
        scored = scored_rows(group, preset, dropped_rows)
        if len(scored) < 2:
            dropped_samples["single_caption" if scored else "no_scored_caption"] += 1
            dropped_rows["single_caption"] += len(scored)
            continue
        candidates += len(scored) * (len(scored) - 1) // 2
        pairs = select_pairs(scored, config, dropped_pairs)
        if not pairs:
            dropped_samples["no_pair"] += 1
            continue
        try:
            image = load_image(group, config.images, embed=config.embed_images)
        except ImageError as exc:
            dropped_samples["image_unreadable"] += 1
            dropped_pairs["image_unreadable"] += len(pairs)
            dropped_rows["image_unreadable"] += len(scored)
            note_image_error(image_errors, group, exc)
            continue
        used += 1
        for pair in pairs:
            writer.write(_row(group, pair, image, preset, config.prompt))
    shard_count = writer.close()
    summary = new_summary(
        "pairs", run, output, config, rows_read=rows_read, samples_read=samples,
        samples_used=used, rows_written=writer.rows, shards=shard_count,
        dropped_rows=counts(dropped_rows), dropped_samples=counts(dropped_samples),
        dropped_pairs=counts(dropped_pairs),
        extra={"preset": preset, "candidate_pairs": candidates, "image_errors": image_errors})
    return finish(summary)
