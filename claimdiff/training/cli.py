"""The training subcommands of `claimdiff`, kept apart from `claimdiff/cli.py`:

    claimdiff pairs RUN --preset NAME --min-margin X    # DPO pairs -> RUN/pairs/
    claimdiff export rwr RUN --beta 0.25                # RWR weights -> RUN/rwr/
    claimdiff export verl RUN --test-fraction 0.05      # verl RL dataset -> RUN/verl/{train,test}/
    claimdiff train dpo --model M --pairs RUN/pairs --output OUT
    claimdiff train rwr --model M --data RUN/rwr --output OUT

Every option is also a field of a validated config (`--config` YAML, `--set key=value`); the
flags win over both.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from claimdiff.errors import ConfigError

COMMANDS = ("pairs", "export", "train")
EXIT_OK = 0


def _config_text(uri: str | None) -> dict[str, Any]:
    if not uri:
        return {}
    import fsspec

    from claimdiff.safe_yaml import load_yaml

    try:
        with fsspec.open(uri, "r", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read --config {uri}: {type(exc).__name__}: {exc}") from exc
    # a training config is as untrusted as a judge config: the same bounded safe loader
    data = load_yaml(text, what=f"--config {uri}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {uri} must hold a YAML mapping")
    return data


def _build(model: type[BaseModel], args: argparse.Namespace, flags: dict[str, Any]) -> Any:
    """YAML, then `--set` overrides, then the flags given on the command line."""
    from claimdiff.safe_yaml import load_yaml

    data = _config_text(args.config)
    updates: dict[str, Any] = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        updates[key.strip()] = load_yaml(raw, what=f"--set {key.strip()}")
    updates.update({k: v for k, v in flags.items() if v is not None})
    for dotted, value in updates.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {dotted}: {part} is not a mapping")
            node = child
        node[leaf] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file with the options below (and more)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, YAML value (repeatable)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what an earlier run wrote to the output")


def _export_common(parser: argparse.ArgumentParser, default_name: str) -> None:
    parser.add_argument("run", help="the --output folder of a judge run")
    parser.add_argument("--output", help=f"dataset folder (default RUN/{default_name})")
    parser.add_argument("--prompt", help="the instruction after the image (default: "
                        "'Describe this image in detail.')")
    parser.add_argument("--no-embed-images", dest="embed_images", action="store_const",
                        const=False, help="write image URIs instead of the images' bytes")
    _common(parser)


def _train_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="image-text-to-text model: local path or cached hub id")
    parser.add_argument("--output", help="folder for checkpoints/, final/, "
                        "training_summary.json, loss.png")
    parser.add_argument("--no-lora", dest="lora.enabled", action="store_const", const=False,
                        help="train every weight (DPO: against an explicit frozen copy)")
    parser.add_argument("--lora-r", dest="lora.r", type=int, help="LoRA rank (default 16)")
    parser.add_argument("--lora-alpha", dest="lora.alpha", type=int, help="LoRA alpha (32)")
    parser.add_argument("--lora-dropout", dest="lora.dropout", type=float, help="(0.05)")
    parser.add_argument("--lora-targets", dest="lora.target_modules",
                        help="regular expression of module names (default: the language "
                        "model's attention and MLP projections)")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"],
                        help="auto (default): bf16 where the GPU supports it, else fp32")
    parser.add_argument("--max-length", dest="max_length", type=int,
                        help="longest example in tokens, image tokens included (default: the "
                        "model's context); longer ones fail the run, never truncated")
    parser.add_argument("--max-steps", dest="trl.max_steps", type=int, help="TRL max_steps")
    parser.add_argument("--epochs", dest="trl.num_train_epochs", type=float,
                        help="TRL num_train_epochs (default 1)")
    parser.add_argument("--learning-rate", dest="trl.learning_rate", type=float)
    parser.add_argument("--batch-size", dest="trl.per_device_train_batch_size", type=int,
                        help="per device (default 2)")
    parser.add_argument("--save-steps", dest="trl.save_steps", type=int,
                        help="checkpoint every N steps (default 500)")
    _common(parser)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    pairs = sub.add_parser(
        "pairs", allow_abbrev=False, help="DPO preference pairs per image from a judge run",
        description="Pair the captions of each sample (image + reference) by reward: chosen = "
        "higher, rejected = lower, at least --min-margin apart; ties, unscored rows, "
        "single-caption samples, identical texts and small margins are dropped and counted. "
        "Writes TRL's conversational vision preference format (images, prompt, chosen, "
        "rejected) with ids and rewards, and a summary beside it (OUTPUT.json).")
    _export_common(pairs, "pairs")
    pairs.add_argument("--preset", help="reward preset (default: the run's primary)")
    pairs.add_argument("--min-margin", dest="min_margin", type=float,
                       help="least reward difference (default 0.1)")
    pairs.add_argument("--strategy", choices=["best_vs_worst", "all_pairs"],
                       help="one pair per sample, widest margin (default), or every pair")
    pairs.add_argument("--max-pairs-per-sample", dest="max_pairs_per_sample", type=int)

    export = sub.add_parser("export", help="training datasets from a judge run: rwr, verl")
    kinds = export.add_subparsers(dest="export_kind", required=True)
    rwr = kinds.add_parser(
        "rwr", allow_abbrev=False, help="reward-weighted regression weights per caption",
        description="One row per scored caption with w = n * min(exp(A/beta), max_weight) / "
        "sum over the sample, A = reward - the sample's mean (README: Training data). Writes "
        "TRL's prompt-completion vision format plus `weight`, which `train rwr` reads.")
    _export_common(rwr, "rwr")
    rwr.add_argument("--preset", help="reward preset (default: the run's primary)")
    rwr.add_argument("--beta", type=float, help="temperature (default 0.25)")
    rwr.add_argument("--max-weight", dest="max_weight", type=float,
                     help="clip of exp(A/beta) (default 20)")
    rwr.add_argument("--min-group-size", dest="min_group_size", type=int,
                     help="least scored captions per sample (default 2)")
    verl = kinds.add_parser(
        "verl", allow_abbrev=False, help="verl RL dataset: one prompt per sample",
        description="Parquet as verl's RLHFDataset reads it: data_source, prompt (chat "
        "messages, <image> placeholder), images, ability, reward_model (ground_truth = the "
        "reference, style), extra_info (index, split); train/ and test/.")
    _export_common(verl, "verl")
    verl.add_argument("--test-fraction", dest="test_fraction", type=float,
                      help="share of samples in test/ (default 0: train/ only)")
    verl.add_argument("--data-source", dest="data_source", help="(default claimdiff)")

    train = sub.add_parser("train", help="train a vision-language model on exported data")
    trainers = train.add_subparsers(dest="train_kind", required=True)
    dpo = trainers.add_parser(
        "dpo", allow_abbrev=False, help="TRL DPOTrainer with LoRA on pairs/",
        description="DPO on `claimdiff pairs` output with TRL's DPOTrainer and a PEFT LoRA "
        "adapter (the frozen base is the reference). Any DPOConfig option: --set trl.KEY=VALUE.")
    dpo.add_argument("--pairs", dest="data", help="the pairs/ folder (any fsspec URL) or glob")
    dpo.add_argument("--beta", dest="trl.beta", type=float, help="DPO beta (default 0.1)")
    _train_common(dpo)
    rwr_train = trainers.add_parser(
        "rwr", allow_abbrev=False, help="weighted SFT (TRL SFTTrainer) on rwr/",
        description="Supervised fine-tuning on `claimdiff export rwr` output, each example's "
        "loss multiplied by its weight. Any SFTConfig option: --set trl.KEY=VALUE.")
    rwr_train.add_argument("--data", help="the rwr/ folder (any fsspec URL) or glob")
    _train_common(rwr_train)


def _flags(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in names}


def _print_export(summary: Any) -> None:
    print(f"{summary.dataset}: {summary.rows_written} rows in {summary.shards} shard(s) at "
          f"{summary.output}")
    print(f"  rewards rows read {summary.rows_read}, samples {summary.samples_read}, "
          f"used {summary.samples_used}")
    for label, dropped in (("rows", summary.dropped_rows), ("samples", summary.dropped_samples),
                           ("pairs", summary.dropped_pairs)):
        if dropped:
            print(f"  dropped {label}: " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    print(f"  summary {summary.output.rstrip('/')}.json")


def _export(args: argparse.Namespace, default_name: str, model: type[BaseModel],
            run: Callable[..., Any], names: list[str]) -> int:
    config = _build(model, args, _flags(args, ["prompt", "embed_images", *names]))
    output = args.output or f"{args.run.rstrip('/')}/{default_name}"
    _print_export(run(args.run, output, config, overwrite=args.overwrite))
    return EXIT_OK


def _train(args: argparse.Namespace, model: type[BaseModel], run: Callable[..., Any]) -> int:
    names = ["model", "data", "output", "precision", "max_length", "lora.enabled", "lora.r",
             "lora.alpha", "lora.dropout", "lora.target_modules", "trl.max_steps",
             "trl.num_train_epochs", "trl.learning_rate", "trl.per_device_train_batch_size",
             "trl.save_steps", "trl.beta"]
    config = _build(model, args, _flags(args, names))
    summary = run(config, overwrite=args.overwrite)
    print(json.dumps({k: summary[k] for k in (
        "kind", "examples", "steps", "first_loss", "last_loss", "final_model", "loss_png")},
        indent=2))
    return EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    if args.command == "pairs":
        from claimdiff.training.pairs import PairsConfig, export_pairs

        return _export(args, "pairs", PairsConfig, export_pairs,
                       ["preset", "min_margin", "strategy", "max_pairs_per_sample"])
    if args.command == "export" and args.export_kind == "rwr":
        from claimdiff.training.rwr import RwrConfig, export_rwr

        return _export(args, "rwr", RwrConfig, export_rwr,
                       ["preset", "beta", "max_weight", "min_group_size"])
    if args.command == "export":
        from claimdiff.training.verl import VerlConfig, export_verl

        return _export(args, "verl", VerlConfig, export_verl, ["test_fraction", "data_source"])
    if args.train_kind == "dpo":
        from claimdiff.training.dpo import DpoTrainConfig, train_dpo

        return _train(args, DpoTrainConfig, train_dpo)
    from claimdiff.training.rwr_trainer import RwrTrainConfig, train_rwr

    return _train(args, RwrTrainConfig, train_rwr)
