"""`claimdiff train dpo`: TRL's `DPOTrainer` on `pairs/`, with a PEFT LoRA adapter by default.

The reference model is the frozen base under the adapter (TRL switches the adapter off to score
the reference), or, without LoRA, an explicit frozen copy of the model made before training (TRL
would otherwise reload the model from its path, which a model built in memory does not have).
The pairs go to TRL as they are (`images`, `prompt`, `chosen`, `rejected`); TRL's vision
collator tokenises and processes images on the fly, with no truncation: every pair's length is
checked against `max_length` first (see `common.check_lengths`).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from claimdiff.training.common import (
    FINAL_DIR,
    TrainConfig,
    check_lengths,
    check_output,
    context_length,
    load_model_and_processor,
    load_training_data,
    prepare_output,
    require,
    resolve_precision,
    trainable_parameters,
    trl_config,
    write_summary,
)

PAIR_COLUMNS = {"images", "prompt", "chosen", "rejected"}
TRL_DEFAULTS: dict[str, Any] = {
    "logging_steps": 1, "report_to": "none", "save_strategy": "steps", "save_steps": 500,
    "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "learning_rate": 5e-6,
    "num_train_epochs": 1.0, "beta": 0.1, "remove_unused_columns": False,
    "dataloader_num_workers": 0, "seed": 0,
}


class DpoTrainConfig(TrainConfig):
    """`claimdiff train dpo`."""

    data: str = Field(min_length=1, description="the pairs/ folder of `claimdiff pairs` (any "
                      "fsspec URL), or a glob of its Parquet shards")


def train_dpo(config: DpoTrainConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Train, save the adapter (or model) and processor to OUTPUT/final, and return the summary
    also written to OUTPUT/training_summary.json (with loss.png beside it)."""
    started = time.monotonic()
    trl = require("trl")
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    precision = resolve_precision(config.precision)
    check_output(config.output, overwrite=overwrite)
    args = trl_config(trl.DPOConfig, Path(config.output), precision,
                      config.trl_kwargs(TRL_DEFAULTS))
    model, processor = load_model_and_processor(config, precision)
    # the output is only touched once the model has loaded: a wrong --model leaves nothing
    root = prepare_output(config.output, overwrite=overwrite)
    limit = config.max_length or context_length(model)
    with load_training_data(config.data, PAIR_COLUMNS) as dataset:
        longest = check_lengths(
            dataset, DataCollatorForVisionPreference(processor=processor, max_length=None), limit)
        ref_model = None
        peft_config = None
        if config.lora.enabled:
            peft_config = config.lora.peft_config()
        else:
            ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        trainer = trl.DPOTrainer(model=model, ref_model=ref_model, args=args,
                                 train_dataset=dataset, processing_class=processor,
                                 peft_config=peft_config)
        trainable, total = trainable_parameters(trainer.model)
        result = trainer.train()
        trainer.save_model(str(root / FINAL_DIR))
        processor.save_pretrained(str(root / FINAL_DIR))
        return write_summary(
            root, kind="dpo", config=config, precision=precision, examples=len(dataset),
            longest=longest, trainer=trainer, train_output=result, started=started,
            extra={"max_length": limit, "reference_model": "frozen base under the adapter"
                   if config.lora.enabled else "explicit frozen copy",
                   "trainable_parameters_before": trainable, "parameters_before": total})
