"""What `claimdiff train dpo` and `claimdiff train rwr` share: configuration, the model and its
processor, precision, the length check, the output folder and the training summary.

Configuration: claimdiff's own fields (the model, the data, LoRA, precision, the length limit)
are a validated model; everything about the optimisation is TRL's own config class (`DPOConfig`,
`SFTConfig`), built from the `trl:` mapping, so every TRL option is available under its TRL
name and validated by TRL. Three TRL options are claimdiff's to set, and refused there:
`max_length` (claimdiff never truncates: it checks every example's length instead, see
`check_lengths`), `bf16`/`fp16` (from `precision`, which knows what the device supports).
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from claimdiff.errors import ClaimdiffError, ConfigError, MissingExtraError

if TYPE_CHECKING:
    import torch

# The language model's projections, not the vision tower's (CLIP and SigLIP name theirs the same)
# nor the LM head (TRL computes log-probabilities from its weight directly, so an adapter there
# would never train). PEFT matches a string as a regular expression on the full module name.
DEFAULT_LORA_TARGETS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
CLAIMDIFF_OWNED_TRL_KEYS = {
    "max_length": "claimdiff never truncates (image tokens would be cut); set max_length at the "
    "top level: every example is checked against it before training",
    "bf16": "set precision (auto, bf16, fp16, fp32) instead",
    "fp16": "set precision (auto, bf16, fp16, fp32) instead",
    "output_dir": "set --output instead (checkpoints go to OUTPUT/checkpoints)",
}
FINAL_DIR = "final"
CHECKPOINT_DIR = "checkpoints"
SUMMARY_FILE = "training_summary.json"
LOSS_PNG = "loss.png"


class TrainingDataError(ClaimdiffError):
    """The training data cannot be trained on as it is (too long, empty, wrong columns)."""


def require(module: str) -> Any:
    """Import an optional dependency of `[train]`, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], "train") from exc


class LoraOptions(BaseModel):
    """The PEFT LoRA adapter (`peft.LoraConfig`); disabled: full fine-tuning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="train a LoRA adapter (false: every weight, "
                          "with an explicit frozen copy of the model as the DPO reference)")
    r: int = Field(default=16, ge=1, description="adapter rank")
    alpha: int = Field(default=32, ge=1, description="lora_alpha: the update is scaled by alpha/r")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: str | list[str] = Field(
        default=DEFAULT_LORA_TARGETS,
        description="module names or one regular expression (PEFT's target_modules)")

    def peft_config(self) -> Any:
        peft = require("peft")
        return peft.LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                               target_modules=self.target_modules, task_type="CAUSAL_LM")


class TrainConfig(BaseModel):
    """What `train dpo` and `train rwr` share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, description="local path (or cached hub id) of an "
                       "image-text-to-text model with its processor")
    data: str = Field(min_length=1, description="the pairs/ or rwr/ folder (any fsspec URL), or "
                      "a glob of its Parquet shards")
    output: str = Field(min_length=1, description="local folder: checkpoints, final model, "
                        "summary")
    lora: LoraOptions = Field(default_factory=LoraOptions)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        default="auto", description="auto: bf16 on a GPU that supports it, else fp32; bf16 and "
        "fp16 are refused where the device lacks them")
    max_length: int | None = Field(
        default=None, ge=1, description="longest example in tokens (image tokens included); "
        "default: the model's max_position_embeddings. Longer examples fail the run, never cut")
    trust_remote_code: bool = Field(default=False,
                                    description="run code shipped with the model")
    trl: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of TRL's config class (DPOConfig "
        "or SFTConfig): learning_rate, max_steps, num_train_epochs, per_device_train_batch_size, "
        "beta, save_steps, ...")

    def trl_kwargs(self, defaults: dict[str, Any]) -> dict[str, Any]:
        for key, why in CLAIMDIFF_OWNED_TRL_KEYS.items():
            if key in self.trl:
                raise ConfigError(f"trl.{key} is claimdiff's to set: {why}")
        return {**defaults, **self.trl}


def trl_config(cls: Any, root: Path, precision: str, kwargs: dict[str, Any]) -> Any:
    """TRL's config class, validated by TRL; no truncation, precision from `resolve_precision`."""
    torch = require("torch")
    # pinned memory only helps (and only exists) with an accelerator; on CPU torch warns
    kwargs = {"dataloader_pin_memory": torch.cuda.is_available(), **kwargs}
    try:
        return cls(output_dir=str(root / CHECKPOINT_DIR), max_length=None,
                   bf16=precision == "bf16", fp16=precision == "fp16", **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"trl: {exc}") from exc


def resolve_precision(precision: str) -> str:
    """fp32, bf16 or fp16, checked against the device (bf16 only where it is supported)."""
    torch = require("torch")
    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return "bf16" if bf16_ok else "fp32"
    if precision == "bf16" and not bf16_ok:
        raise ConfigError("precision bf16 needs a CUDA device that supports bfloat16; "
                          "use precision fp32 (or auto)")
    if precision == "fp16" and not cuda:
        raise ConfigError("precision fp16 needs a CUDA device; use precision fp32 (or auto)")
    return precision


def torch_dtype(precision: str) -> torch.dtype:
    torch = require("torch")
    return {"bf16": torch.bfloat16, "fp16": torch.float32, "fp32": torch.float32}[precision]


def load_model_and_processor(config: TrainConfig, precision: str) -> tuple[Any, Any]:
    transformers = require("transformers")
    try:
        processor = transformers.AutoProcessor.from_pretrained(
            config.model, trust_remote_code=config.trust_remote_code)
        model = transformers.AutoModelForImageTextToText.from_pretrained(
            config.model, dtype=torch_dtype(precision),
            trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the model {config.model}: {exc}") from exc
    if getattr(processor, "tokenizer", None) is None:
        raise ConfigError(f"{config.model} has no processor with a tokenizer: an "
                          "image-text-to-text model is needed")
    return model, processor


def context_length(model: Any) -> int | None:
    text = model.config.get_text_config()
    value = getattr(text, "max_position_embeddings", None)
    return int(value) if value else None


def data_files(uri: str) -> str:
    """A dataset folder's shards, or the glob/file given."""
    if uri.endswith(".parquet") or any(c in uri for c in "*?["):
        return uri
    return uri.rstrip("/") + "/part-*.parquet"


@contextmanager
def load_training_data(uri: str, required: set[str]) -> Iterator[Any]:
    """The dataset as `datasets` reads it (images decoded to PIL through the stored features),
    with its cache in a temporary folder that lives as long as the training."""
    import tempfile

    datasets = require("datasets")
    with tempfile.TemporaryDirectory(prefix="claimdiff-hf-cache-") as cache:
        try:
            dataset = datasets.load_dataset("parquet", data_files=data_files(uri), split="train",
                                            cache_dir=cache)
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"cannot read training data {uri}: {exc}") from exc
        missing = required - set(dataset.column_names)
        if missing:
            raise TrainingDataError(f"{uri} lacks the columns {sorted(missing)} (has "
                                    f"{dataset.column_names})")
        if len(dataset) == 0:
            raise TrainingDataError(f"{uri} holds no examples")
        yield dataset


def check_lengths(dataset: Any, collate: Callable[[list[dict[str, Any]]], dict[str, Any]],
                  limit: int | None, *, batch_size: int = 16) -> int:
    """Tokenise every example exactly as training will (the trainer's own collator, no
    truncation) and fail, naming the longest ones, if any is longer than `limit`. Returns the
    longest length. Batches are padded to their longest example, so only a batch over the limit
    is looked at example by example."""
    longest = 0
    too_long: list[tuple[int, int]] = []
    for start in range(0, len(dataset), batch_size):
        stop = min(start + batch_size, len(dataset))
        length = int(collate([dataset[i] for i in range(start, stop)])["input_ids"].shape[1])
        if limit is not None and length > limit:
            for i in range(start, stop):
                own = int(collate([dataset[i]])["input_ids"].shape[1])
                if own > limit:
                    too_long.append((i, own))
                longest = max(longest, own)
        else:
            longest = max(longest, length)
    if too_long:
        worst = sorted(too_long, key=lambda t: -t[1])[:5]
        raise TrainingDataError(
            f"{len(too_long)} of {len(dataset)} examples are longer than max_length={limit} "
            f"tokens (image tokens included), e.g. rows {[i for i, _ in worst]} with "
            f"{[n for _, n in worst]} tokens. claimdiff does not truncate (it could cut image "
            "tokens or the caption being learned): raise max_length if the model's context "
            "allows, or leave those examples out of the data")
    return longest


def _existing(output: str, *, overwrite: bool) -> list[Path]:
    root = Path(output)
    existing = [p for p in (root / FINAL_DIR, root / CHECKPOINT_DIR, root / SUMMARY_FILE)
                if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{output} already holds a training run; pass --overwrite to replace it")
    return existing


def check_output(output: str, *, overwrite: bool) -> None:
    """Refuse an earlier training run's folder without --overwrite (before any loading)."""
    _existing(output, overwrite=overwrite)


def prepare_output(output: str, *, overwrite: bool) -> Path:
    """Clear an earlier run (with --overwrite) and create the folder."""
    root = Path(output)
    for path in _existing(output, overwrite=overwrite):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    return root


def trainable_parameters(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def plot_losses(log_history: list[dict[str, Any]], path: Path, title: str) -> bool:
    """loss.png: the logged training loss per step (false where nothing was logged)."""
    points = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    if not points:
        return False
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")  # no display: files only
    pyplot = importlib.import_module("matplotlib.pyplot")
    figure, axes = pyplot.subplots(figsize=(6, 3.5), dpi=100)
    steps, losses = zip(*points, strict=True)
    axes.plot(steps, losses, marker="o" if len(points) < 50 else None)
    axes.set_xlabel("step")
    axes.set_ylabel("training loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return True


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def write_summary(root: Path, *, kind: str, config: TrainConfig, precision: str, examples: int,
                  longest: int, trainer: Any, train_output: Any, started: float,
                  extra: dict[str, Any]) -> dict[str, Any]:
    """training_summary.json and loss.png in the output folder."""
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    trainable, total = trainable_parameters(trainer.model)
    summary = {
        "kind": kind,
        "model": config.model,
        "data": config.data,
        "examples": examples,
        "longest_example_tokens": longest,
        "precision": precision,
        "lora": config.lora.model_dump(mode="json"),
        "trainable_parameters": trainable,
        "parameters": total,
        "steps": trainer.state.global_step,
        "final_metrics": {k: _finite(v) for k, v in train_output.metrics.items()},
        "last_logged": {k: _finite(v) for k, v in (
            next((h for h in reversed(history) if "loss" in h), {})).items()},
        "first_loss": _finite(losses[0]) if losses else None,
        "last_loss": _finite(losses[-1]) if losses else None,
        "log_history": [{k: _finite(v) for k, v in h.items()} for h in history],
        "final_model": str(root / FINAL_DIR),
        "checkpoints": sorted(str(p) for p in (root / CHECKPOINT_DIR).glob("checkpoint-*")),
        "duration_s": round(time.monotonic() - started, 2),
        "trl": trainer.args.to_dict() if hasattr(trainer.args, "to_dict") else {},
        **extra,
    }
    summary["loss_png"] = (str(root / LOSS_PNG) if plot_losses(
        history, root / LOSS_PNG, f"claimdiff train {kind}") else None)
    (root / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary
