"""`claimdiff train rwr`: supervised fine-tuning on `rwr/` with each example's weight in the loss.

TRL's `SFTTrainer` (conversational prompt-completion vision data, loss on the completion only)
with one change: the loss. TRL's is the mean negative log-likelihood over the batch's completion
tokens; here every token of example i counts w_i times,

    loss = sum_i w_i * sum_t nll_it / sum_i T_i

over the same token count TRL divides by (T_i: example i's completion tokens; with gradient
accumulation, every token of the accumulated batches). With all weights 1 it is TRL's loss
exactly, and since a sample's weights average 1, a sample weighs what it would in plain SFT on
its captions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import Field

from claimdiff.training.common import (
    FINAL_DIR,
    TrainConfig,
    TrainingDataError,
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

WEIGHT_COLUMN = "weight"
RWR_COLUMNS = {"images", "prompt", "completion", WEIGHT_COLUMN}
TRL_DEFAULTS: dict[str, Any] = {
    "logging_steps": 1, "report_to": "none", "save_strategy": "steps", "save_steps": 500,
    "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "learning_rate": 2e-5,
    "num_train_epochs": 1.0, "completion_only_loss": True, "dataloader_num_workers": 0,
    "seed": 0,
}


class RwrTrainConfig(TrainConfig):
    """`claimdiff train rwr`."""

    data: str = Field(min_length=1, description="the rwr/ folder of `claimdiff export rwr` "
                      "(any fsspec URL), or a glob of its Parquet shards")


class WeightedCollator:
    """TRL's vision collator, plus each example's weight as a `weight` tensor."""

    def __init__(self, base: Any) -> None:
        self._base = base

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        torch = require("torch")
        weights = [float(example.pop(WEIGHT_COLUMN)) for example in examples]
        batch = self._base(examples)
        batch[WEIGHT_COLUMN] = torch.tensor(weights, dtype=torch.float32)
        return batch


def weighted_trainer_class() -> type:
    """`SFTTrainer` with the weighted loss of the module docstring (built lazily: TRL is an
    optional extra)."""
    trl = require("trl")
    torch = require("torch")

    class WeightedSFTTrainer(trl.SFTTrainer):  # type: ignore[name-defined]
        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            columns: list[str] = list(getattr(self, "_signature_columns", None) or [])
            if WEIGHT_COLUMN not in columns:
                self._signature_columns = [*columns, WEIGHT_COLUMN]

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            weights = inputs.pop(WEIGHT_COLUMN)
            outputs = model(**inputs, use_cache=False, fused_lm_head=True)
            per_token = -outputs.log_probs * weights.to(outputs.log_probs.dtype)[:, None]
            tokens = outputs.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = per_token.sum() / torch.as_tensor(tokens).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            mode = "train" if model.training else "eval"
            self._metrics[mode]["weight_mean"].append(float(weights.mean()))
            valid = outputs.label_mask.sum()
            correct = outputs.is_top1.sum()
            self._metrics[mode]["mean_token_accuracy"].append(
                float(correct / valid) if valid > 0 else 0.0)
            return (loss, outputs) if return_outputs else loss

    return WeightedSFTTrainer


def _check_weights(dataset: Any) -> None:
    import math

    weights = dataset[WEIGHT_COLUMN]
    bad = [i for i, w in enumerate(weights) if w is None or not math.isfinite(w) or w < 0]
    if bad:
        raise TrainingDataError(f"{len(bad)} examples have a missing, negative or non-finite "
                                f"weight (rows {bad[:5]})")


def train_rwr(config: RwrTrainConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Train, save the adapter (or model) and processor to OUTPUT/final, and return the summary
    also written to OUTPUT/training_summary.json (with loss.png beside it)."""
    started = time.monotonic()
    trl = require("trl")
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    precision = resolve_precision(config.precision)
    check_output(config.output, overwrite=overwrite)
    args = trl_config(trl.SFTConfig, Path(config.output), precision,
                      config.trl_kwargs(TRL_DEFAULTS))
    model, processor = load_model_and_processor(config, precision)
    # the output is only touched once the model has loaded: a wrong --model leaves nothing
    root = prepare_output(config.output, overwrite=overwrite)
    limit = config.max_length or context_length(model)
    base_collator = DataCollatorForVisionLanguageModeling(
        processor=processor, max_length=None, completion_only_loss=args.completion_only_loss)
    with load_training_data(config.data, RWR_COLUMNS) as dataset:
        _check_weights(dataset)
        longest = check_lengths(dataset.remove_columns([WEIGHT_COLUMN]), base_collator, limit)
        trainer = weighted_trainer_class()(
            model=model, args=args, train_dataset=dataset, processing_class=processor,
            data_collator=WeightedCollator(base_collator),
            peft_config=config.lora.peft_config() if config.lora.enabled else None)
        trainable, total = trainable_parameters(trainer.model)
        result = trainer.train()
        trainer.save_model(str(root / FINAL_DIR))
        processor.save_pretrained(str(root / FINAL_DIR))
        weights = dataset[WEIGHT_COLUMN]
        return write_summary(
            root, kind="rwr", config=config, precision=precision, examples=len(dataset),
            longest=longest, trainer=trainer, train_output=result, started=started,
            extra={"max_length": limit, "weight_min": min(weights), "weight_max": max(weights),
                   "weight_mean": sum(weights) / len(weights),
                   "trainable_parameters_before": trainable, "parameters_before": total})
