"""`claimdiff export verl`: the run's samples as verl's RL dataset, one prompt per sample.

verl's `RLHFDataset` reads Parquet with `datasets.load_dataset("parquet", ...)`, takes the chat
messages of `prompt` (`data.prompt_key`), splits their string content at `<image>` into image and
text parts, and feeds the images of `images` (`data.image_key`; decoded to PIL through the
`datasets` features in the schema, as its own multimodal examples are) to the processor.
`data_source` picks the reward function, `reward_model.ground_truth` is the reference caption,
`extra_info.index` identifies the prompt. The fields the ClaimDiff-RL release's remote reward
manager reads are there as well (`reward_model.answer`, `verifier`, `verifier_parm.image_path`,
`format_ratio`, `length_ratio`; `extra_info.id`, `question`, `image_path`), so its recipe reads
the same corpus.

Every sample of the run becomes one row, whatever its captions' rewards: RL samples its own
captions. A sample is dropped (counted) only when its image cannot be read back unchanged, or
its rows disagree on the image or the reference. `test_fraction` sends a stable share of samples
(by a hash of the sample id) to `test/`, the rest to `train/`.
"""

from __future__ import annotations

import zlib
from collections import Counter

from pydantic import BaseModel, Field

from claimdiff.errors import ImageError
from claimdiff.io.datasets import join
from claimdiff.training.export import (
    ExportSummary,
    ShardWriter,
    counts,
    finish,
    new_summary,
    prepare_output,
)
from claimdiff.training.formats import HFImage, TextMessage
from claimdiff.training.groups import SampleGroup, check_run, iter_groups, load_image
from claimdiff.training.groups import note_image_error as _note
from claimdiff.training.pairs import ExportOptions

IMAGE_PLACEHOLDER = "<image>"
SPLITS = ("train", "test")


class VerlConfig(ExportOptions):
    """`claimdiff export verl`: the fields verl's reward routing reads."""

    data_source: str = Field(default="claimdiff", min_length=1,
                             description="verl picks the reward function by this")
    ability: str = Field(default="caption", min_length=1)
    style: str = Field(default="caption", description="reward_model.style")
    verifier: str = Field(default="claimdiff",
                          description="reward_model.verifier (the released reward manager's "
                          "routing key)")
    test_fraction: float = Field(default=0.0, ge=0.0, lt=1.0,
                                 description="share of samples written to test/ (by id hash)")


class VerlVerifierParams(BaseModel):
    image_path: str


class VerlRewardModel(BaseModel):
    ground_truth: str = Field(description="the reference caption")
    style: str
    answer: str = ""
    verifier: str
    verifier_parm: VerlVerifierParams
    format_ratio: float = 0.0
    length_ratio: float = 0.0


class VerlExtraInfo(BaseModel):
    index: int = Field(description="0-based position of the row in its split")
    split: str
    id: str = Field(description="the sample id")
    sample_id: str
    run_id: str
    image_path: str = Field(description="image URI resolved against the manifest")
    question: str = Field(description="the instruction, without the image placeholder")
    answer: str = ""


class VerlRow(BaseModel):
    """One row of `verl/<split>/`."""

    data_source: str
    prompt: list[TextMessage]
    images: list[HFImage]
    ability: str
    reward_model: VerlRewardModel
    extra_info: VerlExtraInfo


def split_of(sample_id: str, test_fraction: float) -> str:
    """`test` for a stable `test_fraction` of sample ids, else `train`.

    >>> split_of("any", 0.0)
    'train'
    """
    return "test" if zlib.crc32(sample_id.encode("utf-8")) / 2**32 < test_fraction else "train"


def _row(group: SampleGroup, image: HFImage, config: VerlConfig, split: str, index: int
         ) -> VerlRow:
    return VerlRow(
        data_source=config.data_source,
        prompt=[TextMessage(role="user", content=f"{IMAGE_PLACEHOLDER}{config.prompt}")],
        images=[image], ability=config.ability,
        reward_model=VerlRewardModel(
            ground_truth=group.reference, style=config.style, verifier=config.verifier,
            verifier_parm=VerlVerifierParams(image_path=group.image_uri)),
        extra_info=VerlExtraInfo(
            index=index, split=split, id=group.sample_id, sample_id=group.sample_id,
            run_id=group.run_id, image_path=group.image_uri, question=config.prompt))


def export_verl(run: str, output: str, config: VerlConfig, *, overwrite: bool = False
                ) -> ExportSummary:
    """Write `output/train/part-*.parquet` (and `test/`), and `output.json`."""
    rows_read = check_run(run)
    prepare_output(output, overwrite=overwrite)
    splits = SPLITS if config.test_fraction > 0 else SPLITS[:1]
    writers = {s: ShardWriter(join(output, s), VerlRow, config.rows_per_shard) for s in splits}
    dropped_rows: Counter[str] = Counter()
    dropped_samples: Counter[str] = Counter()
    image_errors: list[str] = []
    samples = 0
    for group in iter_groups(run, config.bucket_rows):
        samples += 1
        if not group.consistent:
            dropped_samples["inconsistent_sample"] += 1
            dropped_rows["inconsistent_sample"] += len(group.rows)
            continue
        try:
            image = load_image(group, config.images, embed=config.embed_images)
        except ImageError as exc:
            dropped_samples["image_unreadable"] += 1
            dropped_rows["image_unreadable"] += len(group.rows)
            _note(image_errors, group, exc)
            continue
        split = split_of(group.sample_id, config.test_fraction)
        writer = writers[split]
        writer.write(_row(group, image, config, split, writer.rows))
    shard_count = sum(w.close() for w in writers.values())
    written = {s: w.rows for s, w in writers.items()}
    summary = new_summary(
        "verl", run, output, config, rows_read=rows_read, samples_read=samples,
        samples_used=sum(written.values()), rows_written=sum(written.values()),
        shards=shard_count, dropped_rows=counts(dropped_rows),
        dropped_samples=counts(dropped_samples),
        extra={"rows_by_split": written, "image_errors": image_errors})
    return finish(summary)
