"""`claimdiff export rwr`: reward-weighted regression weights, one row per scored caption.

Within a sample (one image with one reference) of n scored captions with rewards r_1..r_n:

    A_i = r_i - mean(r)                         the advantage over the sample's mean
    u_i = min(exp(A_i / beta), max_weight)      exponentiated, clipped
    w_i = n * u_i / sum_j u_j                   normalised: a sample's weights average 1

beta (the temperature) sets how sharply better captions are preferred: small beta imitates only
the best caption, large beta every caption alike. The clip keeps one caption from taking a whole
sample's weight before normalisation; the normalisation makes every image count as much as in
plain fine-tuning on its captions, whatever its reward level. Rows without a reward are dropped
(`failed`, `null_reward`), and samples with fewer than `min_group_size` scored captions
(`single_caption`: one caption has no advantage over anything) or an unreadable image.

The rows are TRL's conversational prompt-completion vision format (`images`, `prompt`,
`completion`) plus `weight`, which `claimdiff train rwr` multiplies into each example's loss.
"""

from __future__ import annotations

import math
from collections import Counter

from pydantic import BaseModel, Field

from claimdiff.errors import ImageError
from claimdiff.training.export import (
    ExportSummary,
    ShardWriter,
    counts,
    finish,
    new_summary,
    prepare_output,
)
from claimdiff.training.formats import HFImage, Message, assistant_turn, user_prompt
from claimdiff.training.groups import check_run, iter_groups, load_image, note_image_error
from claimdiff.training.pairs import ExportOptions, resolve_preset, scored_rows


class RwrConfig(ExportOptions):
    """`claimdiff export rwr`: how rewards become per-caption weights."""

    preset: str | None = Field(
        default=None, description="reward preset weighted (default: the run's primary)")
    beta: float = Field(default=0.25, gt=0, description="temperature of exp(advantage / beta)")
    max_weight: float = Field(default=20.0, ge=1.0,
                              description="clip of exp(advantage / beta), before normalisation")
    min_group_size: int = Field(default=2, ge=1,
                                description="least scored captions a sample needs")


class RwrRow(BaseModel):
    """One row of `rwr/`: a caption as an SFT example, with its weight."""

    images: list[HFImage]
    prompt: list[Message]
    completion: list[Message]
    weight: float = Field(description="w_i: the example's multiplier in the loss")
    advantage: float = Field(description="A_i = reward - the sample's mean reward")
    reward: float
    sample_mean_reward: float
    sample_size: int = Field(description="scored captions of the sample")
    sample_id: str
    actor_id: str
    run_id: str
    preset: str
    manifest: str
    row_index: int
    # not `image`: TRL reads a column of that name as the example's single image
    image_path: str = Field(description="image URI as written in the manifest")
    image_uri: str = Field(description="image URI resolved against the manifest")
    reference: str


def rwr_weights(rewards: list[float], beta: float, max_weight: float
                ) -> list[tuple[float, float]]:
    """(advantage, weight) per reward of one sample, by the formula of the module docstring.

    >>> [(round(a, 3), round(w, 3)) for a, w in rwr_weights([1.0, 0.5, 0.5], 0.25, 20.0)]
    [(0.333, 2.361), (-0.167, 0.32), (-0.167, 0.32)]
    >>> rwr_weights([0.7, 0.7], 0.25, 20.0)
    [(0.0, 1.0), (0.0, 1.0)]
    """
    mean = sum(rewards) / len(rewards)
    advantages = [r - mean for r in rewards]
    cap = math.log(max_weight)
    clipped = [math.exp(min(a / beta, cap)) for a in advantages]
    total = sum(clipped)
    return [(a, len(rewards) * u / total) for a, u in zip(advantages, clipped, strict=True)]


def export_rwr(run: str, output: str, config: RwrConfig, *, overwrite: bool = False
               ) -> ExportSummary:
    """Write `output/part-*.parquet` and `output.json` (see the module docstring)."""
    rows_read = check_run(run)
    preset = resolve_preset(run, config.preset)
    prepare_output(output, overwrite=overwrite)
    writer = ShardWriter(output, RwrRow, config.rows_per_shard)
    dropped_rows: Counter[str] = Counter()
    dropped_samples: Counter[str] = Counter()
    image_errors: list[str] = []
    samples = used = uniform = clipped = 0
    for group in iter_groups(run, config.bucket_rows):
        samples += 1
        if not group.consistent:
            dropped_samples["inconsistent_sample"] += 1
            dropped_rows["inconsistent_sample"] += len(group.rows)
            continue
        scored = scored_rows(group, preset, dropped_rows)
        if len(scored) < config.min_group_size:
            dropped_samples["single_caption" if scored else "no_scored_caption"] += 1
            dropped_rows["single_caption"] += len(scored)
            continue
        try:
            image: HFImage = load_image(group, config.images, embed=config.embed_images)
        except ImageError as exc:
            dropped_samples["image_unreadable"] += 1
            dropped_rows["image_unreadable"] += len(scored)
            note_image_error(image_errors, group, exc)
            continue
        used += 1
        rewards = [value for _, value in scored]
        weights = rwr_weights(rewards, config.beta, config.max_weight)
        uniform += len(set(rewards)) == 1
        mean = sum(rewards) / len(rewards)
        for (row, value), (advantage, weight) in zip(scored, weights, strict=True):
            clipped += advantage / config.beta > math.log(config.max_weight)
            writer.write(RwrRow(
                images=[image], prompt=user_prompt(config.prompt),
                completion=assistant_turn(row.caption), weight=weight, advantage=advantage,
                reward=value, sample_mean_reward=mean, sample_size=len(scored),
                sample_id=group.sample_id, actor_id=row.actor_id, run_id=group.run_id,
                preset=preset, manifest=row.manifest, row_index=row.row_index,
                image_path=group.image, image_uri=group.image_uri, reference=group.reference))
    shard_count = writer.close()
    summary = new_summary(
        "rwr", run, output, config, rows_read=rows_read, samples_read=samples, samples_used=used,
        rows_written=writer.rows, shards=shard_count, dropped_rows=counts(dropped_rows),
        dropped_samples=counts(dropped_samples),
        extra={"preset": preset, "uniform_reward_samples": uniform, "clipped_weights": clipped,
               "image_errors": image_errors})
    return finish(summary)
