"""The judge pipeline: manifest -> images -> judge -> differences, rewards, failures, run.json."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from claimdiff.config import ClaimdiffConfig
from claimdiff.errors import ConfigError, EarlyStopError, PipelineFailed
from claimdiff.io.claims import OutputClaim, read_claim
from claimdiff.io.manifest import expand_manifests
from claimdiff.io.storage import CLOUD_SECRET_ENV
from claimdiff.judges.answers import answer_files
from claimdiff.judges.backends.factory import build_backend
from claimdiff.judges.events import judge_stats
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.model_handler import BackendFactory
from claimdiff.pipelines import outputs
from claimdiff.redaction import Redactor
from claimdiff.runners.options import sanitised_options
from claimdiff.schemas.rows import DifferenceRow, FailureRow, reward_row_model
from claimdiff.schemas.run import RunManifest
from claimdiff.transforms.derive import Derive
from claimdiff.transforms.failures import null_reward
from claimdiff.transforms.judge import Judge
from claimdiff.transforms.load_images import LoadImages
from claimdiff.transforms.progress import CountProgress
from claimdiff.transforms.read_manifest import NAMESPACE as MANIFEST_NAMESPACE
from claimdiff.transforms.read_manifest import ROWS_READ, ReadManifest
from claimdiff.transforms.reuse import EARLY_STOP_MARKER, EarlyStop, KnownAnswers, PersistAnswers
from claimdiff.transforms.write import WriteDataset
from claimdiff.version import code_version


@dataclass(frozen=True)
class JudgeJob:
    """One judge run: where to read, where to write, how to judge."""

    manifest: str
    output: str
    config: ClaimdiffConfig = field(default_factory=ClaimdiffConfig)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    overwrite: bool = False
    take_over: bool = False
    backend_factory: BackendFactory = build_backend  # another backend for tests and callers
    # earlier run folders whose answers are reused by cache key (`--reuse`)
    reuse: tuple[str, ...] = ()
    # finish an incomplete (killed) run in `output`, reusing the answers it kept (`--resume`)
    resume: bool = False


def build(pipeline: beam.Pipeline, job: JudgeJob, manifests: Sequence[str],
          setup: JudgeSetup, answer_files: Sequence[str] = ()) -> None:
    """Wire the stages; the whole DAG on one screen. `answer_files`: earlier answers to reuse."""
    config, run_id = job.config, job.run_id
    rows = pipeline | "ReadManifest" >> ReadManifest(
        manifests, run_id, config.images.allowed_schemes, config.manifest.max_text_chars)
    known = (pipeline | "KnownAnswers" >> KnownAnswers(list(answer_files))
             if answer_files else None)
    # rows with a known answer are split off as soon as their image's sha256 is known
    images = rows.ok | "LoadImages" >> LoadImages(run_id, config.images, known, setup)
    judged = images.ok | "Judge" >> Judge(run_id, setup, job.backend_factory)
    answered = judged.ok if images.reused is None else (
        (judged.ok, images.reused) | "WithReused" >> beam.Flatten())
    _ = answered | "PersistAnswers" >> beam.ParDo(
        PersistAnswers(job.output, run_id, config.run.persist_every, secret_env(config)))
    derived = answered | "Derive" >> Derive(run_id, config, setup)

    failed = (
        (rows.failures, images.failures, judged.failures, derived.failures)
        | "CollectFailures" >> beam.Flatten()
    )
    if config.run.early_stop_min_rows:
        _ = ((derived.rewards | "Answered" >> beam.Map(lambda _: True),
              failed | "Failed" >> beam.Map(lambda _: False))
             | "Outcomes" >> beam.Flatten()
             | "EarlyStop" >> beam.ParDo(EarlyStop(config.run.early_stop_min_rows,
                                                   config.run.max_failure_share)))
    null_rewards = failed | "NullRewards" >> beam.FlatMap(null_reward)
    rewards = (derived.rewards, null_rewards) | "CollectRewards" >> beam.Flatten()

    # live progress (claimdiff.transforms.progress): a side branch that outputs nothing
    _ = {"read": rows.ok, "read/failures": rows.failures, "judged": derived.rewards,
         "failed": failed} | "Progress" >> CountProgress(run_id)

    shards, secrets = config.run.num_shards, secret_env(config)
    _ = derived.differences | "WriteDifferences" >> WriteDataset(
        job.output, outputs.DIFFERENCES, DifferenceRow, shards, secrets)
    # one struct field per configured preset (`preset_values.<name>`), derived from a model
    reward_model = reward_row_model([p.name for p in config.rewards.presets])
    _ = rewards | "WriteRewards" >> WriteDataset(
        job.output, outputs.REWARDS, reward_model, shards, secrets)
    _ = (
        failed
        | "FailureRows" >> beam.Map(lambda f: f.failure)
        | "WriteFailures" >> WriteDataset(
            job.output, outputs.FAILURES, FailureRow, shards, secrets)
    )


def secret_env(config: ClaimdiffConfig) -> list[str]:
    """The environment variables whose values are secrets of this run (scrubbed everywhere)."""
    return [config.judge.openai.api_key_env, *CLOUD_SECRET_ENV]


def _metrics(
    result: beam.runners.runner.PipelineResult,
) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """Beam counters and distributions, summed over steps, committed values where reported."""
    from apache_beam.metrics.metric import MetricsFilter

    queried = result.metrics().query(MetricsFilter())
    counters: dict[str, int] = {}
    for metric in queried["counters"]:
        name = f"{metric.key.metric.namespace}/{metric.key.metric.name}"
        value = metric.committed if metric.committed is not None else metric.attempted
        counters[name] = counters.get(name, 0) + int(value or 0)
    distributions: dict[str, dict[str, float]] = {}
    for metric in queried["distributions"]:
        name = f"{metric.key.metric.namespace}/{metric.key.metric.name}"
        data = metric.committed if metric.committed is not None else metric.attempted
        if data is None or not data.count:
            continue
        distributions[name] = {"count": data.count, "sum": data.sum, "min": data.min,
                               "max": data.max, "mean": round(data.sum / data.count, 3)}
    return counters, distributions


def run_judge(
    job: JudgeJob,
    options: PipelineOptions,
    clock: Callable[[], float] = time.time,
) -> RunManifest:
    """Run the pipeline, check the accounting, write `run.json`, and return it.

    The caller decides what a non-ok status means (the CLI exits non-zero). A pipeline that
    raises is `PipelineFailed` (no `run.json`); errors found before it starts are `ClaimdiffError`s.
    """
    config = job.config
    setup = JudgeSetup.build(config)  # the run's constants, once, for every stage and run.json
    manifests = expand_manifests(job.manifest, config.images.allowed_schemes)
    if job.resume and job.overwrite:
        raise ConfigError("--resume keeps what the killed run judged and --overwrite clears "
                          "it: pass one of them")
    if any(source.rstrip("/") == job.output.rstrip("/") for source in job.reuse):
        raise ConfigError(f"--reuse {job.output} is the --output itself, which the run "
                          "replaces: reuse it into another --output (or --resume a killed run)")
    earlier = answer_files(job.reuse)  # checked before anything is claimed or cleared
    # resuming a run killed on this machine takes over its claim: its owner is known gone
    # (a claim from elsewhere, only probably stale, still needs --take-over)
    left = read_claim(job.output) if job.resume else None
    take_over = job.take_over or (left is not None and left.owner_gone())
    try:
        with OutputClaim.acquire(job.output, job.run_id, take_over=take_over, clock=clock):
            kept = outputs.prepare_output(job.output, overwrite=job.overwrite,
                                          resume=job.resume)
            sources = [*job.reuse, *([job.output] if kept else [])]
            files = [*earlier, *(answer_files([job.output]) if kept else [])]
            return _run_claimed(job, options, clock, manifests, setup, sources, files)
    except OSError as exc:
        if outputs.is_out_of_space(exc):
            raise outputs.out_of_space(job.output, exc) from exc
        raise


def _run_claimed(job: JudgeJob, options: PipelineOptions, clock: Callable[[], float],
                 manifests: Sequence[str], setup: JudgeSetup, sources: Sequence[str],
                 files: Sequence[str]) -> RunManifest:
    """The run itself, once the output folder is this run's alone."""
    config = job.config
    started = clock()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, job, manifests, setup, files)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as exc:
        outputs.remove_temp(job.output)
        if outputs.is_out_of_space(exc):
            raise outputs.out_of_space(job.output, exc) from exc
        message = " ".join(str(exc).split())
        if EARLY_STOP_MARKER in message:
            # the worker's words, without the runner's frames around them
            found = message[message.index(EARLY_STOP_MARKER):].split(" [while running", 1)[0]
            raise EarlyStopError(found.split("\\n", 1)[0].strip(" '\"")) from exc
        raise PipelineFailed(f"{type(exc).__name__}: {message}") from exc
    outputs.remove_temp(job.output)
    pipeline_s = clock() - started

    counters, distributions = _metrics(result)
    rows_in = counters.get(f"{MANIFEST_NAMESPACE}/{ROWS_READ}")
    if rows_in is None:
        # a runner that reports no metrics: count the rows again (same reader)
        rows_in = outputs.count_manifest_rows(manifests)
    accounting = outputs.account(job.output, rows_in)
    share = accounting.failure_share
    if not accounting.balanced:
        status = "accounting_mismatch"
    elif share > config.run.max_failure_share:
        status = "failure_threshold_exceeded"
    else:
        status = "ok"
    finished = clock()
    manifest = RunManifest(
        run_id=job.run_id,
        status=status,
        manifest=job.manifest,
        output=job.output,
        started_at=datetime.fromtimestamp(started, UTC).isoformat(),
        finished_at=datetime.fromtimestamp(finished, UTC).isoformat(),
        duration_s=round(finished - started, 3),
        code_version=code_version(),
        judge_backend=config.judge.backend,
        judge_model=setup.model_id,
        judge_model_sha256=setup.model_digest,
        prompt_name=setup.prompt.name,
        prompt_version=setup.prompt_version,
        decoding=setup.decoding.model_dump(),
        config=json.loads(config.model_dump_json()),
        config_sha256=config.sha256(),
        pipeline_options=sanitised_options(options),
        timings={"pipeline_s": round(pipeline_s, 3),
                 "accounting_s": round(finished - started - pipeline_s, 3)},
        counters=counters,
        judge_stats=judge_stats(counters, two_pass=setup.verify_prompt is not None,
                                swap=config.judge.swap_fraction > 0,
                                holistic=setup.holistic_prompt is not None),
        distributions=distributions,
        accounting=accounting,
        failure_share=round(share, 6),
        max_failure_share=config.run.max_failure_share,
        files=outputs.written_files(job.output),
        reused_from=list(sources),
    )
    # the configuration, the URIs and the options as typed may hold credentials
    redactor = Redactor.from_env(*secret_env(config))
    manifest = RunManifest.model_validate(redactor.value(manifest.model_dump(mode="json")))
    outputs.commit_run(job.output, manifest)
    return manifest

