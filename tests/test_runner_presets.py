"""Runner presets: every preset resolves to validated options and builds the whole judge graph;
`--dry-run` prints both and touches nothing. (No cluster is reachable here: the graphs are
built, never run; the multi-process preset's full run is tests/test_pipeline_multiprocess.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from claimdiff.cli import EXIT_OK, EXIT_USAGE, main
from claimdiff.config import load_config
from claimdiff.errors import ConfigError
from claimdiff.pipelines.dry_run import pipeline_graph
from claimdiff.pipelines.judge import JudgeJob
from claimdiff.runners.options import pipeline_options
from claimdiff.runners.presets import PRESETS
from claimdiff.synth.sample import write_sample

DATAFLOW = ["--project=p", "--region=us-central1", "--temp_location=gs://b/tmp",
            "--sdk_container_image=us-docker.pkg.dev/p/r/claimdiff-vllm:1"]
IMAGE = ["--environment_config=us-docker.pkg.dev/p/r/claimdiff-vllm:1"]
# what each preset needs from the user, and options it must have resolved to
CASES = {
    "local": ([], {"runner": "FnApiRunner"}),
    "multiprocess": ([], {"runner": "FnApiRunner", "direct_running_mode": "multi_processing",
                          "direct_num_workers": 2}),
    "dataflow-gpu": (DATAFLOW, {
        "runner": "DataflowRunner", "machine_type": "g2-standard-8",
        "sdk_container_image": "us-docker.pkg.dev/p/r/claimdiff-vllm:1",
        "sdk_location": "container",
        "dataflow_service_options": [
            "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"],
        "resource_hints": ["accelerator=type:nvidia-l4;count:1;install-nvidia-driver"],
        "experiments": ["use_runner_v2"]}),
    "flink": (IMAGE, {"runner": "PortableRunner", "job_endpoint": "localhost:8099",
                      "environment_type": "DOCKER"}),
    "spark": (IMAGE, {"runner": "PortableRunner", "job_endpoint": "localhost:8099",
                      "environment_type": "DOCKER"}),
}
STAGES = ["ReadManifest", "LoadImages  <- ReadManifest", "Judge  <- LoadImages",
          "PersistAnswers  <- Judge",
          "Derive  <- Judge", "CollectFailures  <- Derive, Judge, LoadImages, ReadManifest",
          "Answered  <- Derive", "Failed  <- CollectFailures", "Outcomes  <- Answered, Failed",
          "EarlyStop  <- Outcomes",
          "NullRewards  <- CollectFailures", "CollectRewards  <- Derive, NullRewards",
          "Progress  <- CollectFailures, Derive, ReadManifest",
          "WriteDifferences  <- Derive", "WriteRewards  <- CollectRewards",
          "FailureRows  <- CollectFailures", "WriteFailures  <- FailureRows"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_sample(str(tmp_path_factory.mktemp("data")), images=2, actors=2, seed=1)


def test_every_preset_is_covered():
    assert set(CASES) == set(PRESETS)


@pytest.mark.parametrize("preset", sorted(CASES))
def test_each_preset_builds_validated_options_and_the_whole_graph(
        preset: str, manifest: str, tmp_path: Path):
    given, expected = CASES[preset]
    options = pipeline_options(given, preset, workers=2)
    resolved = options.get_all_options()
    for key, value in expected.items():
        assert resolved[key] == value, key
    if preset == "dataflow-gpu":
        assert resolved["setup_file"] == str(Path(__file__).parents[1] / "setup.py")
    job = JudgeJob(manifest=manifest, output=str(tmp_path / "never"), config=load_config(None))
    graph = pipeline_graph(job, options)
    assert [line for line in graph if not line.startswith(" ")] == STAGES
    assert "  RunInference" in graph  # the judge is RunInference on every runner
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(("preset", "given", "missing"), [
    ("dataflow-gpu", [], ["--project", "--region", "--temp_location", "--sdk_container_image"]),
    ("dataflow-gpu", [*DATAFLOW[:2], "--temp_location=/tmp/x", *DATAFLOW[3:]],
     ["must be a gs:// folder"]),
    ("flink", [], ["--environment_config"]),
    ("spark", ["--runner=SparkRunner"], ["--environment_config"]),
])
def test_what_a_preset_cannot_guess_is_named(preset: str, given: list[str], missing: list[str]):
    with pytest.raises(ConfigError) as error:
        pipeline_options(given, preset)
    for name in missing:
        assert name in str(error.value)


def test_the_users_options_win_and_a_wrong_runner_is_refused():
    options = pipeline_options([*DATAFLOW, "--machine_type=g2-standard-16",
                                "--experiments=enable_prime"], "dataflow-gpu")
    resolved = options.get_all_options()
    assert resolved["machine_type"] == "g2-standard-16"
    assert resolved["experiments"] == ["enable_prime"]  # the user's list, not merged
    assert pipeline_options(["--runner=FlinkRunner", "--flink_master=h:8081", *IMAGE],
                            "flink").get_all_options()["runner"] == "FlinkRunner"
    with pytest.raises(ConfigError, match="does not fit --runner-preset spark"):
        pipeline_options(["--runner=DataflowRunner"], "spark")


def test_gpu_workers_hold_one_engine_per_gpu():
    vllm = {"judge.backend": "vllm", "judge.model": "/models/judge"}
    pipeline_options(DATAFLOW, "dataflow-gpu", config=load_config(None, vllm))
    copies = load_config(None, {**vllm, "judge.vllm.share_across_processes": False})
    with pytest.raises(ConfigError, match="share_across_processes must be true"):
        pipeline_options(DATAFLOW, "dataflow-gpu", config=copies)
    two = "worker_accelerator=type:nvidia-l4;count:2;install-nvidia-driver"
    with pytest.raises(ConfigError, match=r"2 GPU.*tensor_parallel_size=1"):
        pipeline_options([*DATAFLOW, f"--dataflow_service_options={two}",
                          "--resource_hints=accelerator=type:nvidia-l4;count:2"],
                         "dataflow-gpu", config=load_config(None, vllm))
    pipeline_options([*DATAFLOW, f"--dataflow_service_options={two}",
                      "--resource_hints=accelerator=type:nvidia-l4;count:2"], "dataflow-gpu",
                     config=load_config(None, {**vllm, "judge.vllm.tensor_parallel_size": 2}))


def test_dry_run_prints_options_and_graph_and_touches_nothing(
        manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    assert main(["judge", "--manifest", manifest, "--output", str(out), "--runner-preset",
                 "dataflow-gpu", "--dry-run", *DATAFLOW,
                 "--s3_secret_access_key=dry-run-secret-123"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "--runner=DataflowRunner" in printed
    assert "--s3_secret_access_key=<redacted>" in printed
    assert "dry-run-secret-123" not in printed
    assert "  Judge  <- LoadImages" in printed
    assert not out.exists()  # no folder, so no claim and no shard
    # what a real run would refuse, a dry run refuses too, before anything is built
    assert main(["judge", "--manifest", manifest, "--output", str(out), "--runner-preset",
                 "dataflow-gpu", "--dry-run"]) == EXIT_USAGE
    assert "--project is required" in capsys.readouterr().err
    # Beam's spelling is claimdiff's dry run too, never a whole run on a local runner
    assert main(["judge", "--manifest", manifest, "--output", str(out), "--dry_run"]) == EXIT_OK
    assert "pipeline graph:" in capsys.readouterr().out
    assert not out.exists()
