"""Runner presets: the Beam options one kind of cluster needs, filled in and checked up front.

A preset adds defaults for the options the user did not give (a given option always wins) and
refuses, with one line naming them, the options it cannot guess (a project, a container image,
a job server). `claimdiff judge --runner-preset NAME --dry-run` prints what a preset resolved to
and the pipeline graph without running anything.

- `local`: Beam's in-process `FnApiRunner` (never Prism, which downloads a binary).
- `multiprocess`: the same runner with worker processes (every stage's state must pickle).
- `dataflow-gpu`: Dataflow with one NVIDIA L4 per worker VM (a G2 machine), the driver installed
  by Dataflow, a custom SDK container that holds `claimdiff[vllm]` (README: Runners), the package
  shipped with `--setup_file`, and one vLLM engine per GPU: the judge's engine is shared by every
  SDK process on a VM (`judge.vllm.share_across_processes`), and a VM with N GPUs runs one engine
  over all of them (`judge.vllm.tensor_parallel_size` = N), so no GPU holds two copies and none
  sits idle.
- `flink`, `spark`: Beam's portable runner against the cluster's job server (`--job_endpoint`),
  workers in the same custom container (`--environment_type=DOCKER`); `--runner=FlinkRunner
  --flink_master=...` or `--runner=SparkRunner --spark_master_url=...` instead of a job server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claimdiff.errors import ConfigError

L4 = "type:nvidia-l4;count:1;install-nvidia-driver"
_COUNT = re.compile(r"count:(\d+)")
# checks on the parsed options (and the judge's config): each returns what is wrong, if anything
Check = Callable[[dict[str, Any], Any], list[str]]


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    runner: str
    # other runners the user may name instead (a cluster's own runner class)
    runners: tuple[str, ...] = ()
    defaults: tuple[str, ...] = ()
    checks: tuple[Check, ...] = field(default=())


def _flag(arg: str) -> str:
    return arg.split("=", 1)[0]


def _given(args: Sequence[str], flag: str) -> bool:
    return any(_flag(a) == flag for a in args)


def _required(*names: str) -> Check:
    def check(options: dict[str, Any], config: Any) -> list[str]:
        return [f"--{name} is required" for name in names if not options.get(name)]
    return check


def _gcs_temp(options: dict[str, Any], config: Any) -> list[str]:
    temp = options.get("temp_location") or ""
    if temp and not temp.startswith("gs://"):
        return [f"--temp_location must be a gs:// folder on Dataflow (got {temp})"]
    return []


def _container_for_docker(options: dict[str, Any], config: Any) -> list[str]:
    if (options.get("environment_type") or "DOCKER").upper() == "DOCKER" and not options.get(
            "environment_config"):
        return ["--environment_config (the worker container image, with claimdiff[vllm]) is "
                "required with --environment_type=DOCKER"]
    return []


def _gpus_per_worker(options: dict[str, Any]) -> int:
    for value in [*(options.get("dataflow_service_options") or []),
                  *(options.get("resource_hints") or [])]:
        if "accelerator" in value:
            match = _COUNT.search(value)
            if match:
                return int(match.group(1))
    return 0


def _one_engine_per_gpu(options: dict[str, Any], config: Any) -> list[str]:
    """The judge's engine must not be copied into each SDK process, and must use every GPU."""
    gpus = _gpus_per_worker(options)
    if not gpus:
        return ["no GPU requested: --dataflow_service_options=worker_accelerator=... or "
                "--resource_hints=accelerator=... must name one"]
    if config is None or config.judge.backend != "vllm":
        return []
    vllm = config.judge.vllm
    problems = []
    if not vllm.share_across_processes:
        problems.append("judge.vllm.share_across_processes must be true on GPU workers (each "
                        "SDK process would load its own copy of the model onto the GPU)")
    if vllm.tensor_parallel_size != gpus:
        problems.append(
            f"{gpus} GPU(s) per worker but judge.vllm.tensor_parallel_size="
            f"{vllm.tensor_parallel_size}: the one engine per worker must span its GPUs")
    return problems


def default_setup_file() -> str | None:
    """claimdiff's own setup.py, when it runs from a source checkout (Beam builds the package
    on the workers from it)."""
    candidate = Path(__file__).resolve().parents[2] / "setup.py"
    return str(candidate) if candidate.is_file() else None


def _local_workers(workers: int | None) -> int:
    return workers or min(4, os.cpu_count() or 1)


PRESETS: dict[str, Preset] = {
    preset.name: preset for preset in (
        Preset("local", "Beam's in-process FnApiRunner", "FnApiRunner"),
        Preset("multiprocess", "FnApiRunner with worker processes on this machine",
               "FnApiRunner", defaults=("--direct_running_mode=multi_processing",)),
        Preset(
            "dataflow-gpu",
            "Dataflow, one NVIDIA L4 per worker, custom container with claimdiff[vllm]",
            "DataflowRunner",
            defaults=(
                "--machine_type=g2-standard-8",  # 8 vCPUs, 32 GB RAM, 1 L4 (24 GB)
                f"--dataflow_service_options=worker_accelerator={L4}",
                f"--resource_hints=accelerator={L4}",
                "--disk_size_gb=100",  # the container (~10 GB) and the model's weights
                "--sdk_location=container",  # the Beam SDK of the container, not a staged one
                "--experiments=use_runner_v2",
                "--autoscaling_algorithm=THROUGHPUT_BASED",
                "--max_num_workers=8",
            ),
            checks=(_required("project", "region", "temp_location", "sdk_container_image",
                              "setup_file"), _gcs_temp, _one_engine_per_gpu),
        ),
        Preset(
            "flink", "Flink through Beam's portable runner (a Flink job server)",
            "PortableRunner", runners=("FlinkRunner",),
            defaults=("--job_endpoint=localhost:8099", "--environment_type=DOCKER"),
            checks=(_container_for_docker,),
        ),
        Preset(
            "spark", "Spark through Beam's portable runner (a Spark job server)",
            "PortableRunner", runners=("SparkRunner",),
            defaults=("--job_endpoint=localhost:8099", "--environment_type=DOCKER"),
            checks=(_container_for_docker,),
        ),
    )
}


def resolve_args(preset_name: str, beam_args: Sequence[str],
                 workers: int | None = None) -> list[str]:
    """The Beam arguments a preset resolves to: the user's, then the preset's defaults for
    options the user did not give."""
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown runner preset {preset_name!r}; choose from "
                          f"{', '.join(PRESETS)}")
    preset = PRESETS[preset_name]
    args = list(beam_args)
    runner = next((a.split("=", 1)[1] for a in args if a.startswith("--runner=")), None)
    if runner is None and "--runner" in args:
        runner = args[args.index("--runner") + 1]
    if runner is None:
        args.append(f"--runner={preset.runner}")
    elif preset_name in ("local", "multiprocess"):
        return args  # a runner named outright replaces the local presets entirely
    elif runner not in (preset.runner, *preset.runners):
        raise ConfigError(f"--runner={runner} does not fit --runner-preset {preset_name} "
                          f"(it runs {', '.join((preset.runner, *preset.runners))})")
    for default in preset.defaults:
        if not _given(args, _flag(default)):
            args.append(default)
    if preset_name == "multiprocess" and not _given(args, "--direct_num_workers"):
        args.append(f"--direct_num_workers={_local_workers(workers)}")
    if preset_name == "dataflow-gpu" and not _given(args, "--setup_file"):
        setup_file = default_setup_file()
        if setup_file:
            args.append(f"--setup_file={setup_file}")
    return args


def check_preset(preset_name: str, options: dict[str, Any], config: Any = None) -> None:
    """Raise `ConfigError` listing everything the resolved options lack for this preset."""
    problems = [p for check in PRESETS[preset_name].checks for p in check(options, config)]
    if problems:
        raise ConfigError(f"--runner-preset {preset_name}: " + "; ".join(problems))
