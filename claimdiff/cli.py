"""`claimdiff`: one command, with subcommands.

    claimdiff synth --n 500 --seed 0 --out DIR      # diagnostic scenes with known differences
    claimdiff sample --out DIR                      # small demo data, with broken rows
    claimdiff judge --manifest URI --output URI     # judge, derive rewards, write Parquet shards
    claimdiff show OUTPUT                           # summarise a run
    claimdiff eval --run OUTPUT --gold MANIFEST     # score a run against gold labels
    claimdiff schema rewards                        # print a dataset's Arrow or JSON schema
    claimdiff pairs | export rwr | export verl | train dpo | train rwr   (claimdiff.training.cli)
    claimdiff report OUTPUT [--baseline OUTPUT]     # data-quality report; exit 4 if breached
    claimdiff rewards RUN --preset NAME             # recompute a preset from differences/
    claimdiff sweep RUN --lambda 0:1:0.1            # the hallucination/omission frontier
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from claimdiff import exit_codes
from claimdiff.config import JudgeConfig
from claimdiff.errors import (
    ClaimdiffError,
    ConfigError,
    EarlyStopError,
    OutOfSpaceError,
    PipelineFailed,
    UnreadableRunError,
)
from claimdiff.redaction import RedactingFilter, Redactor
from claimdiff.runners.presets import PRESETS as RUNNER_PRESETS

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE = exit_codes.OK, exit_codes.RUN_FAILED, exit_codes.USAGE
EXIT_PIPELINE_FAILED, EXIT_NO_SPACE = exit_codes.PIPELINE_FAILED, exit_codes.NO_SPACE
EXIT_UNREADABLE = exit_codes.UNREADABLE
TRAINING_COMMANDS = ("pairs", "export", "train")  # claimdiff.training.cli
COMPARE_DEFAULT = "relative,holistic"  # `sweep --compare`: holistic only where the run has it
_MAX_ERROR_CHARS = 800

JUDGE_EPILOG = """\
Manifest: JSONL, Parquet or CSV (by extension; .gz etc. allowed), one row per actor caption with
columns image, reference, caption and optionally sample_id, actor_id, gold; other columns are kept
as metadata. Image paths may be relative to the manifest. A glob reads several manifests.

Outputs under --output: differences/, rewards/, failures/ (Parquet, zstd) and run.json with
the accounting. The exit status is 1 when the failure share passes run.max_failure_share or the
accounting does not balance, 2 for usage or configuration errors, 3 when the pipeline itself
failed (run.json is then not written).

Any argument not listed above must be a Beam pipeline option (others are refused), e.g.
  --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp --setup_file=./setup.py

examples:
  claimdiff judge --manifest data/manifest.jsonl --output out/run1
  claimdiff judge --manifest data/manifest.jsonl --output out/run2 \\
      --judge transformers --model /models/my-vlm --set judge.max_new_tokens=512
  claimdiff judge --manifest data/manifest.jsonl --output out/run3 \\
      --judge vllm --model /models/my-vlm --set judge.vllm.max_model_len=16384
  claimdiff judge --manifest data/manifest.jsonl --output out/run4 \\
      --judge openai --base-url http://127.0.0.1:8000/v1 --model my-vlm
"""


def _parse_set(values: Sequence[str]) -> dict[str, Any]:
    """`--set judge.max_new_tokens=512`: the value is parsed as YAML (bounded safe loader)."""
    from claimdiff.safe_yaml import load_yaml

    overrides: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set expects KEY=VALUE (e.g. --set judge.max_batch_size=4)")
        overrides[key.strip()] = load_yaml(raw, what=f"--set {key.strip()}") if raw else None
    return overrides


def _read_config_text(uri: str) -> str:
    import fsspec

    try:
        with fsspec.open(uri, "r", encoding="utf-8") as handle:
            return str(handle.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read --config {uri}: {type(exc).__name__}: {exc}") from exc


def _choices(model: type[BaseModel], field: str) -> list[str]:
    """The values a `Literal` config field allows: CLI choices derive from the config models."""
    return [str(v) for v in typing.get_args(model.model_fields[field].annotation)]


def _judge_modes() -> str:
    """What the judge can do and the keys that set it, from the config's own descriptions."""
    fields = JudgeConfig.model_fields
    lines = ["judge modes (config keys; `claimdiff config` prints every key):"]
    for key in ("mode", "verify_granularity", "verify_rule", "swap_fraction", "output_format",
                "prompt"):
        info = fields[key]
        values = _choices(JudgeConfig, key) if typing.get_args(info.annotation) and key not in (
            "swap_fraction", "prompt") else []
        shown = f" [{' | '.join(values)}]" if values else ""
        lines.append(f"  judge.{key}{shown}: {info.description}")
    return "\n".join(textwrap.fill(line, 100, subsequent_indent="      ") for line in lines)


def _judge_parser(sub: argparse._SubParsersAction) -> None:
    judge = sub.add_parser(
        "judge", allow_abbrev=False,
        help="judge a manifest and write differences, rewards and failures",
        description="Judge every (image, reference, actor caption) row of a manifest, derive "
        "outcomes, statistics and rewards, and write Parquet shards plus run.json.",
        epilog=JUDGE_EPILOG + "\n" + _judge_modes(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    judge.add_argument("--manifest", required=True, help="manifest URI or glob (any fsspec URL)")
    judge.add_argument("--output", required=True, help="output folder URI (local, gs://, s3://)")
    judge.add_argument("--config", help="YAML config file (see README: Configuration)")
    judge.add_argument("--judge", choices=_choices(JudgeConfig, "backend"),
                       help="judge backend (config judge.backend; default labels)")
    judge.add_argument("--model", help="model path or hub id (transformers, vllm, openai)")
    judge.add_argument("--base-url", help="OpenAI-compatible endpoint for --judge openai, e.g. "
                       "http://127.0.0.1:8000/v1 (API key from $OPENAI_API_KEY)")
    judge.add_argument("--device", help="torch device for --judge transformers (cpu, cuda, auto)")
    judge.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set judge.max_batch_size=4 (repeatable)")
    judge.add_argument("--run-id", help="run id (default: random)")
    judge.add_argument("--overwrite", action="store_true",
                       help="replace a previous run in --output")
    judge.add_argument("--take-over", action="store_true",
                       help="take over the claim a crashed run left on --output (a second run "
                       "into an output that a live run holds is refused; see README: Failure "
                       "handling)")
    judge.add_argument("--reuse", action="append", default=[], metavar="RUN",
                       help="an earlier run folder whose answers are reused by cache key: only "
                       "rows it did not judge (new image, caption, reference, model, prompt or "
                       "decoding) are sent to the judge (repeatable)")
    judge.add_argument("--resume", action="store_true",
                       help="finish the incomplete run a kill left in --output, judging only "
                       "what it had not kept in answers/ (README: Incremental and resumable "
                       "runs)")
    judge.add_argument("--runner-preset", choices=list(RUNNER_PRESETS), default="local",
                       help="Beam options for one kind of runner (README: Runners): "
                       + "; ".join(f"{p.name}: {p.summary}" for p in RUNNER_PRESETS.values()))
    # `--dry_run` too: Beam has an option of that name, which the local runners ignore (the
    # whole job would run)
    judge.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                       help="print the resolved pipeline options and the pipeline graph, and "
                       "run nothing (no output folder, no claim)")
    judge.add_argument("--latest", metavar="URI",
                       help="after an ok run, point this JSON file at the run folder, "
                       "atomically (README: Downstream jobs)")
    judge.add_argument("--progress-every", type=float, metavar="SECONDS",
                       help="a progress line every SECONDS (default 2 on a terminal, 30 in a "
                       "log; 0: none)")
    judge.add_argument("--workers", type=int, help="worker processes for --runner-preset "
                       "multiprocess")


def _run_judge(args: argparse.Namespace, beam_args: list[str], own_options: list[str]) -> int:
    from claimdiff.config import load_config
    from claimdiff.pipelines.judge import JudgeJob, run_judge
    from claimdiff.runners.options import check_beam_args, pipeline_options

    check_beam_args(beam_args, own_options)
    text = _read_config_text(args.config) if args.config else None
    overrides = _parse_set(args.set)
    for key, value in (("judge.backend", args.judge), ("judge.model", args.model),
                       ("judge.device", args.device), ("judge.openai.base_url", args.base_url)):
        if value is not None:
            overrides[key] = value
    config = load_config(text, overrides)
    job_args: dict[str, Any] = {"manifest": args.manifest, "output": args.output,
                                "config": config, "overwrite": args.overwrite,
                                "take_over": args.take_over, "reuse": tuple(args.reuse),
                                "resume": args.resume}
    if args.run_id:
        job_args["run_id"] = args.run_id
    options = pipeline_options(beam_args, args.runner_preset, args.workers, config)
    if args.dry_run:
        from claimdiff.pipelines.dry_run import describe, render

        print(render(describe(JudgeJob(**job_args), options, args.runner_preset)))
        return EXIT_OK
    job = JudgeJob(**job_args)
    with _progress(args, job.run_id, options):
        manifest = run_judge(job, options)
    if args.latest:
        from claimdiff.io.latest import publish_latest

        if publish_latest(args.latest, manifest):
            print(f"latest: {args.latest} -> {manifest.output}")
    acc = manifest.accounting
    print(f"run {manifest.run_id}: {manifest.status}")
    print(f"  rows in      {acc.rows_in}")
    print(f"  judged       {acc.rows_judged}")
    print(f"  failed       {acc.rows_failed}  {acc.failures_by_stage or ''}")
    print(f"  differences  {acc.differences}")
    print(f"  failure share {manifest.failure_share:.3f} (max {manifest.max_failure_share})")
    print(f"  outputs      {manifest.output}/{{differences,rewards,failures}}/ and run.json")
    if acc.top_failure_reasons:
        print("  most common failure reasons:")
        for reason in acc.top_failure_reasons[:5]:
            print(f"    {reason.count:>6}  {reason.stage:<13} {reason.error_class}: "
                  f"{reason.example}")
    return EXIT_OK if manifest.status == "ok" else EXIT_RUN_FAILED


def _progress(args: argparse.Namespace, run_id: str, options: Any) -> Any:
    from claimdiff.transforms.progress import ProgressReporter

    every = args.progress_every
    if every is None:
        every = 2.0 if sys.stderr.isatty() else 30.0
    resolved = options.get_all_options()
    live = (resolved.get("runner") == "FnApiRunner"
            and resolved.get("direct_running_mode") in (None, "in_memory"))
    return ProgressReporter(run_id, every_s=every, live=live or every <= 0)


def _run_sample(args: argparse.Namespace) -> int:
    from claimdiff.synth.sample import write_sample

    manifest = write_sample(args.out, images=args.images, actors=args.actors, seed=args.seed,
                            broken=not args.no_broken)
    print(manifest)
    return EXIT_OK


def _run_eval(args: argparse.Namespace) -> int:
    from claimdiff.config import load_config
    from claimdiff.evaluation import evaluate, render_table, write_report

    config = load_config(_read_config_text(args.config)) if args.config else None
    report = evaluate(args.run, args.gold, config=config, threshold=args.threshold,
                      policy_column=args.policy_column, edit_column=args.edit_column)
    print(render_table(report))
    if args.report:
        write_report(report, args.report)
    return EXIT_OK


def _run_synth(args: argparse.Namespace) -> int:
    from claimdiff.synth import write_synthetic

    print(write_synthetic(args.out, n=args.n, seed=args.seed,
                          edits_per_image=args.edits_per_image))
    return EXIT_OK


def _run_show(args: argparse.Namespace) -> int:
    from claimdiff.quality.summary import summarise

    print(summarise(args.output, by=args.by, examples=args.examples))
    return EXIT_OK


def _split_sets(values: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--set` of `rewards`/`sweep`: dotted keys change the configuration the statistics are
    derived with (`severity.rule_set=paper`); plain keys are fields of the preset
    (`counting=labels`)."""
    overrides = _parse_set(values)
    fields = {k: v for k, v in overrides.items() if "." not in k}
    config = {k: v for k, v in overrides.items() if "." in k}
    return fields, config


def _run_rewards(args: argparse.Namespace) -> int:
    from claimdiff.rewards.recompute import resolve_preset, run_config, write_recomputed

    fields, overrides = _split_sets(args.set)
    config = run_config(args.run, overrides)
    preset = resolve_preset(args.preset, config, fields)
    result = write_recomputed(args.run, preset, config, overrides, overwrite=args.overwrite)
    mean = "n/a" if result.mean is None else f"{result.mean:.4f}"
    print(f"{preset.name} ({preset.kind} v{preset.version}, counting {preset.counting}): "
          f"{result.rows} rows, {result.ok} judged, {result.null} null, mean {mean}")
    print(f"  written to {args.run.rstrip('/')}/{result.dataset}/")
    return EXIT_OK


def _run_sweep(args: argparse.Namespace) -> int:
    import fnmatch
    from dataclasses import asdict

    from claimdiff.config import LambdaPreset
    from claimdiff.rewards.recompute import recompute_rows, resolve_preset, run_config
    from claimdiff.rewards.sweep import lambda_grid, plot_frontier, render_sweep, sweep

    lambdas = lambda_grid(args.lambdas)
    fields, overrides = _split_sets(args.set)
    config = run_config(args.run, overrides)
    measure = resolve_preset("lambda", config, fields)
    if not isinstance(measure, LambdaPreset):
        raise ConfigError("--set must leave the sweep's preset a lambda preset")
    rows = [r for r in recompute_rows(args.run, config)
            if not any(fnmatch.fnmatchcase(r.row.actor_id, p) for p in args.exclude)]
    names = [n.strip() for n in args.compare.split(",") if n.strip()]
    if args.compare == COMPARE_DEFAULT and not any(
            r.stats is not None and r.stats.holistic_score is not None for r in rows):
        names.remove("holistic")  # placed by default only where the run has holistic scores
    others = [resolve_preset(name, config) for name in names]
    report = sweep(rows, lambdas, measure, others, config)
    print(render_sweep(report))
    if not args.no_plot:
        plot = args.plot or f"{args.run.rstrip('/')}/sweep.png"
        plot_frontier(report, plot, args.title or "")
        print(f"frontier: {plot}")
    if args.report:
        import fsspec

        with fsspec.open(args.report, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(report), indent=2) + "\n")
    return EXIT_OK


def _run_config(args: argparse.Namespace) -> int:
    from claimdiff.config import load_config
    from claimdiff.config_docs import commented_yaml

    text = _read_config_text(args.check) if args.check else None
    config = load_config(text, _parse_set(args.set), source=args.check or "--config")
    print(commented_yaml(config), end="")
    if args.check:
        print(f"# {args.check}: valid", file=sys.stderr)
    return EXIT_OK


def _run_schema(args: argparse.Namespace) -> int:

    from claimdiff.config import ClaimdiffConfig
    from claimdiff.schemas.arrow import arrow_schema
    from claimdiff.schemas.describe import schema_lines
    from claimdiff.schemas.judge import JudgeOutput, decoding_schema
    from claimdiff.schemas.rows import DifferenceRow, FailureRow, reward_row_model

    if args.dataset == "judge":
        schema = decoding_schema() if args.decoding else JudgeOutput.model_json_schema()
        print(json.dumps(schema, indent=2))
        return EXIT_OK
    # rewards/ has a struct field per configured preset: the default configuration's here
    presets = [p.name for p in ClaimdiffConfig().rewards.presets]
    model: dict[str, type[BaseModel]] = {
        "differences": DifferenceRow, "rewards": reward_row_model(presets),
        "failures": FailureRow}
    print("\n".join(schema_lines(arrow_schema(model[args.dataset]), model[args.dataset])))
    return EXIT_OK


# ---- claimdiff report: data-quality report of a run (claimdiff.quality) ----

REPORT_EPILOG = """\
Checks a run's shards and run.json with Great Expectations (schema and values derived from the
row models, identities, run health, accounting, judge noise, and drift against --baseline) and
writes REPORT/index.html (self-contained: plots embedded, no network at view time), report.json
and data_docs/ (Great Expectations Data Docs). REPORT is OUTPUT/report unless --out is given.

exit status: 0 every expectation met; 4 at least one expectation breached; 5 the run (or the
baseline) cannot be read; 2 usage or configuration errors. --json prints the result (the same
document as report.json) on stdout, for the unreadable case too.

examples:
  claimdiff report out/run1
  claimdiff report out/run2 --baseline out/run1 --config quality.yaml --by policy
  claimdiff report gs://bucket/runs/run3 --json --no-html
  claimdiff report out/run1 --set thresholds.max_spurious_share=0.1
"""


def _report_parser(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report", help="data-quality report of a run: expectations, Data Docs, plots",
        description="Validate a judge run's outputs and write an HTML report; the exit status "
        "says whether the run may go on to training.",
        epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("run", help="the --output folder of a judge run (any fsspec URL)")
    report.add_argument("--baseline", help="an earlier run to compare distributions with")
    report.add_argument("--config", help="quality YAML: thresholds, drift, extra expectations "
                        "(README: Quality report)")
    report.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a quality config key, e.g. "
                        "--set thresholds.max_spurious_share=0.1 (repeatable)")
    report.add_argument("--by", default="actor_id",
                        help="group hallucinations vs omissions by this column or metadata key "
                        "(default actor_id)")
    written = report.add_mutually_exclusive_group()
    written.add_argument("--out", help="report folder (default RUN/report); a previous report "
                         "there is replaced")
    written.add_argument("--no-html", action="store_true",
                         help="validate only: write nothing (no Data Docs, no plots)")
    report.add_argument("--json", action="store_true", help="print the result as JSON")


def _run_report(args: argparse.Namespace) -> int:
    from claimdiff.quality import assess, build_report, load_quality_config
    from claimdiff.quality.report import unreadable

    config = load_quality_config(args.config, _parse_set(args.set))
    try:
        if args.no_html:
            result = assess(args.run, baseline=args.baseline, config=config).result
        else:
            result = build_report(args.run, out=args.out, baseline=args.baseline,
                                  config=config, by=args.by)
    except UnreadableRunError as exc:
        result = unreadable(args.run, exc)
        if not args.json:
            print(f"claimdiff: error: unreadable run: {exc}", file=sys.stderr)
    if args.json:
        print(result.model_dump_json(indent=2))
        return result.exit_code
    if result.error is None:
        total = len(result.expectations)
        print(f"run {result.run_id}: {result.outcome.value} ({result.passed} of {total} "
              f"expectations met)")
        for item in result.expectations:
            if not item.success:
                limit = f" (threshold {item.threshold})" if item.threshold else ""
                print(f"  breached {item.id}: {item.observed}{limit}")
        if result.not_computed:
            print(f"  not computed: {', '.join(s.id for s in result.not_computed)}")
        if result.report:
            print(f"  report {result.report}")
    return result.exit_code


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="serve rewards to an RL trainer over HTTP (the released reward server's "
        "protocol, and a batch endpoint)",
        description="Load the judge once and score (image, reference, caption) requests as "
        "they come, gathering concurrent ones into judge batches. POST /judge speaks the "
        "released reward server's protocol; POST /score takes batches; GET /health reports. "
        "A request that cannot be scored is refused with its stage and reason, never given a "
        "number (README: Rewards during RL).")
    serve.add_argument("--config", help="YAML config file (judge, rewards, serve sections)")
    serve.add_argument("--judge", choices=_choices(JudgeConfig, "backend"),
                       help="judge backend (config judge.backend)")
    serve.add_argument("--model", help="model path or hub id (transformers, vllm, openai)")
    serve.add_argument("--host", help="listen address (config serve.host; default loopback)")
    serve.add_argument("--port", type=int, help="port (config serve.port; 0: a free one)")
    serve.add_argument("--image-root", action="append", default=[], metavar="DIR",
                       help="a folder request image paths may point into (repeatable; config "
                       "serve.image_roots)")
    serve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set serve.max_batch=16 (repeatable)")


def _run_serve(args: argparse.Namespace) -> int:
    from claimdiff.config import load_config
    from claimdiff.serving.server import serve

    overrides = _parse_set(args.set)
    for key, value in (("judge.backend", args.judge), ("judge.model", args.model),
                       ("serve.host", args.host), ("serve.port", args.port)):
        if value is not None:
            overrides[key] = value
    if args.image_root:
        overrides["serve.image_roots"] = args.image_root
    config = load_config(_read_config_text(args.config) if args.config else None, overrides)

    def ready(url: str) -> None:
        print(f"claimdiff serve: {url} (judge {config.judge.backend}, "
              f"primary reward {config.rewards.primary})", flush=True)

    serve(config, ready=ready)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claimdiff", description="Claim-level caption judging and rewards for caption RL.",
        allow_abbrev=False)
    parser.add_argument("-v", "--verbose", action="store_true", help="log Beam's progress")
    sub = parser.add_subparsers(dest="command", required=True)
    _judge_parser(sub)
    sample = sub.add_parser("sample", help="write demo data: images and a manifest with gold")
    sample.add_argument("--out", required=True, help="folder URI for images and manifest.jsonl")
    sample.add_argument("--images", type=int, default=10)
    sample.add_argument("--actors", type=int, default=4, help="actor captions per image")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--no-broken", action="store_true",
                        help="leave out the deliberately broken rows")
    synth = sub.add_parser(
        "synth", help="render diagnostic scenes with captions whose differences are known",
        description="Render scenes from random scene graphs (objects, colours, sizes, patterns, "
        "counts, relations, a sign, a setting), write a long reference caption per scene and "
        "actor captions with controlled edits, each recorded as a gold difference. Writes "
        "images/, manifest.jsonl (the project's input format, gold in `gold`, edit kind in "
        "`edit`) and scenes.jsonl. Deterministic from --seed.")
    synth.add_argument("--out", required=True, help="folder URI (any fsspec URL)")
    synth.add_argument("--n", type=int, default=100, help="number of scenes (default 100)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--edits-per-image", type=int, default=3,
                       help="edited actor captions per scene, besides the clean one (0-15)")
    evaluation = sub.add_parser(
        "eval", help="score a judge run against gold labels",
        description="Match the run's differences to the gold differences of a manifest (per "
        "sample and actor, by claim and aspect text) and report precision/recall of "
        "hallucinations, omissions and reference errors, the outcome confusion matrix, severity "
        "agreement, judge noise, per-policy rates and reward ordering checks.")
    evaluation.add_argument("--run", required=True, help="the --output folder of a judge run")
    evaluation.add_argument("--gold", required=True,
                            help="manifest URI or glob whose `gold` column holds the labels")
    evaluation.add_argument("--config", help="YAML config (default: the run's own, from run.json)")
    evaluation.add_argument("--threshold", type=float, default=0.3,
                            help="least match score: the mean token Jaccard of the aspects and "
                            "of the claims (default 0.3)")
    evaluation.add_argument("--policy-column", default="actor_id",
                            help="column or metadata key naming the policy of a caption")
    evaluation.add_argument("--edit-column", default="edit",
                            help="metadata key naming a caption's edit kind (ordering checks)")
    evaluation.add_argument("--report", help="write the report here too (.json, or .txt table)")
    show = sub.add_parser("show", help="summarise a run: accounting, outcomes, mean rewards")
    show.add_argument("output", help="the --output folder of a judge run")
    show.add_argument("--by", default="actor_id",
                      help="group rewards by this column or metadata key (default actor_id)")
    show.add_argument("--examples", type=int, default=3, help="example differences to print")
    rewards = sub.add_parser(
        "rewards", help="recompute one preset's rewards from a run, without calling the judge",
        description="Derive a run's statistics again from differences/ (and the judge's stored "
        "answers where its labels are needed) and apply one preset, into a dataset beside "
        "rewards/: RUN/rewards-<name>-v<version>/. With the run's own configuration the values "
        "are the judge-time ones, bit for bit.",
        epilog="examples:\n"
        "  claimdiff rewards out/run1 --preset normalized_diff --set counting=labels\n"
        "  claimdiff rewards out/run1 --preset normalized_a_only --set counting=labels \\\n"
        "      --set severity_weighted=true --set severity.rule_set=paper "
        "--set severity.judge_severity=false\n"
        "  claimdiff rewards out/run1 --preset relative --set version=2 "
        "--set severity.weights='{1: 1, 2: 2, 3: 4}'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rewards.add_argument("run", help="the --output folder of a judge run")
    rewards.add_argument("--preset", required=True,
                         help="a preset of the run's configuration, or a built-in one: "
                         "relative, actor_only, tradeoff, lambda, normalized_diff, "
                         "normalized_a_only, a_only, raw_diff, judgment_based, hall_vs_miss, "
                         "holistic")
    rewards.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a preset field (counting=labels, severity_weighted=true, "
                         "version=2) or, dotted, a severity/taxonomy/rewards.ambiguity key "
                         "(repeatable)")
    rewards.add_argument("--overwrite", action="store_true",
                         help="replace an earlier recomputation of the same preset version")
    sweep = sub.add_parser(
        "sweep", help="the hallucination/omission frontier of a run over lambda",
        description="For each lambda, the caption each image prefers under the lambda preset "
        "and the resulting hallucination and omission rates (per image and per 100 words), as "
        "a table and a PNG of the frontier with other presets (relative; holistic where the "
        "run has holistic scores) placed on it.")
    sweep.add_argument("run", help="the --output folder of a judge run")
    sweep.add_argument("--lambda", dest="lambdas", default="0:1:0.1", metavar="START:STOP:STEP",
                       help="operating points, both ends included, or a list (default 0:1:0.1)")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a field of the lambda preset (severity_weighted=false, "
                       "counting=labels, per_words=50) or a dotted configuration key")
    sweep.add_argument("--compare", default=COMPARE_DEFAULT,
                       help="presets placed on the frontier (default relative,holistic)")
    sweep.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="leave out captions whose actor_id matches (repeatable)")
    sweep.add_argument("--plot", help="PNG of the frontier (default RUN/sweep.png)")
    sweep.add_argument("--title", help="title of the picture")
    sweep.add_argument("--no-plot", action="store_true", help="print the table only")
    sweep.add_argument("--report", help="also write the points as JSON here")
    config = sub.add_parser(
        "config", help="print the configuration with every key described, or check a file",
        description="Without --check: the default configuration as commented YAML (each key "
        "under its description; it loads back as it is). With --check FILE: validate the file "
        "(and --set overrides) and print the resolved configuration, or exit 2 saying why.")
    config.add_argument("--check", metavar="FILE", help="a YAML config file to validate")
    config.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override, as for judge (repeatable)")
    schema = sub.add_parser("schema", help="print the schema of a dataset or of the judge output")
    schema.add_argument("dataset", choices=["differences", "rewards", "failures", "judge"])
    schema.add_argument("--decoding", action="store_true",
                        help="with judge: the schema used for constrained decoding")
    _serve_parser(sub)
    from claimdiff.training.cli import add_parsers as add_training_parsers

    add_training_parsers(sub)
    _report_parser(sub)
    # No prefix matching: `--runner=X` (a Beam option) must not be taken for `--runner-preset`.
    for subcommand in sub.choices.values():
        subcommand.allow_abbrev = False
    return parser


_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _BeamNoise(logging.Filter):
    """Drops the warnings Beam logs on every run, which say nothing about the job."""

    NOISE = ("apitools not found", "Resource module is not available")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOISE)


class _NoBeamTracebacks(logging.Formatter):
    """Beam's records without their tracebacks: a failing stage's error still prints, and the
    command ends with one line that names it (`-v` keeps everything). The record itself is left
    alone, for any other handler."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name.startswith("apache_beam") and (record.exc_info or record.stack_info):
            record = logging.makeLogRecord(
                {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None})
        return super().format(record)


def _key_env(argv: Sequence[str]) -> list[str]:
    """API-key variable names set on the command line (`--set judge.openai.api_key_env=X`)."""
    names = []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.strip() == "judge.openai.api_key_env" and value.strip():
            names.append(value.strip())
    return names


def _own_options(parser: argparse.ArgumentParser, command: str) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [opt for action in sub.choices[command]._actions for opt in action.option_strings]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "judge":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format=_LOG_FORMAT)
    from claimdiff.io.storage import CLOUD_SECRET_ENV

    redactor = Redactor.from_env("OPENAI_API_KEY", *CLOUD_SECRET_ENV,
                                 *_key_env(getattr(args, "set", None) or []))
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(redactor))
        if not args.verbose:
            handler.addFilter(_BeamNoise())
            handler.setFormatter(_NoBeamTracebacks(_LOG_FORMAT))
    try:
        if args.command == "judge":
            return _run_judge(args, rest, _own_options(parser, "judge"))
        if args.command == "sample":
            return _run_sample(args)
        if args.command == "show":
            return _run_show(args)
        if args.command == "synth":
            return _run_synth(args)
        if args.command == "eval":
            return _run_eval(args)
        if args.command == "config":
            return _run_config(args)
        if args.command in TRAINING_COMMANDS:
            from claimdiff.training.cli import run_command

            return run_command(args)
        if args.command == "report":
            return _run_report(args)
        if args.command == "rewards":
            return _run_rewards(args)
        if args.command == "sweep":
            return _run_sweep(args)
        if args.command == "serve":
            return _run_serve(args)
        return _run_schema(args)
    except PipelineFailed as exc:
        # One clear line and a distinct status rather than a page of Beam frames.
        if args.verbose:
            logging.error("the pipeline failed", exc_info=exc.__cause__ or exc)
        message = redactor.text(str(exc))[:_MAX_ERROR_CHARS]
        print(f"claimdiff: error: the pipeline failed: {message}"
              + ("" if args.verbose else " (-v prints the traceback)"), file=sys.stderr)
        return EXIT_PIPELINE_FAILED
    except OutOfSpaceError as exc:
        print(f"claimdiff: error: {redactor.text(str(exc))}", file=sys.stderr)
        return EXIT_NO_SPACE
    except EarlyStopError as exc:
        print(f"claimdiff: error: {redactor.text(str(exc))}", file=sys.stderr)
        return exit_codes.EARLY_STOPPED
    except UnreadableRunError as exc:
        print(f"claimdiff: error: {redactor.text(str(exc))}", file=sys.stderr)
        return EXIT_UNREADABLE
    except ClaimdiffError as exc:
        print(f"claimdiff: error: {redactor.text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE


def run() -> None:
    """The console entry point: `main`, then an exit that skips interpreter teardown.

    One in ten or so read-only commands (`show`, `eval`) died at exit with "terminate called
    without an active exception" (SIGABRT) after all their work was done and printed: a native
    thread of an extension library torn down while joinable. Everything claimdiff writes is
    closed before `main` returns (local judge servers are stopped just below), so flushing and
    leaving with `os._exit` is safe and keeps exit codes honest.
    """
    code = main()
    # os._exit below skips atexit and weakref finalizers: stop local judge servers here, and
    # wait for them (a worker's own death is covered by each server's guard process).
    from claimdiff.serving.server_guard import stop_all_servers

    stop_all_servers()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
