from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from claimdiff.cli import EXIT_OK, EXIT_PIPELINE_FAILED, EXIT_RUN_FAILED, EXIT_USAGE, main


def test_help_explains_the_judge_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["judge", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("--manifest", "--output", "--config", "--judge", "--model", "--overwrite",
                   "Beam pipeline option", "run.max_failure_share"):
        assert phrase in text


def test_sample_then_judge(tmp_path: Path, capsys):
    assert main(["sample", "--out", str(tmp_path / "data"), "--images", "3"]) == EXIT_OK
    manifest = capsys.readouterr().out.strip()
    assert manifest.endswith("manifest.jsonl")
    code = main(["judge", "--manifest", manifest, "--output", str(tmp_path / "run"),
                 "--set", "run.max_failure_share=0.3"])
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    assert "rows in      15" in printed
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["accounting"]["balanced"] is True
    assert run["pipeline_options"]["runner"] == "FnApiRunner"

    assert main(["show", str(tmp_path / "run")]) == EXIT_OK
    summary = capsys.readouterr().out
    assert "rows in 15 = judged 12 + failed 3" in summary
    faithful = next(line for line in summary.splitlines() if line.startswith("faithful"))
    assert faithful.split()[1:5] == ["3", "0.500", "1.000", "1.000"]

    report = tmp_path / "eval.json"
    assert main(["eval", "--run", str(tmp_path / "run"), "--gold", manifest,
                 "--report", str(report)]) == EXIT_OK
    assert "Reward ordering" in capsys.readouterr().out
    saved = json.loads(report.read_text())
    assert saved["join"]["joined_judged"] == 12


def test_threshold_exit_code_and_config_errors(tmp_path: Path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"image": "missing.png", "reference": "A.", "caption": "B."})
                        + "\n")
    assert main(["judge", "--manifest", str(manifest), "--output", str(tmp_path / "o")]) == (
        EXIT_RUN_FAILED)
    config = tmp_path / "c.yaml"
    config.write_text("judge:\n  backend: transformers\n")
    assert main(["judge", "--manifest", str(manifest), "--output", str(tmp_path / "p"),
                 "--config", str(config)]) == EXIT_USAGE
    assert "judge.model is required" in capsys.readouterr().err
    config.write_text("judge:\n  bakend: labels\n")
    assert main(["judge", "--manifest", str(manifest), "--output", str(tmp_path / "p"),
                 "--config", str(config)]) == EXIT_USAGE
    assert "bakend" in capsys.readouterr().err
    config.write_text("!!python/object/apply:os.system ['echo unsafe']\n")
    assert main(["judge", "--manifest", str(manifest), "--output", str(tmp_path / "p"),
                 "--config", str(config)]) == EXIT_USAGE
    assert "not valid YAML" in capsys.readouterr().err


def test_schema_command(capsys):
    assert main(["schema", "rewards"]) == EXIT_OK
    assert "\nstats: struct\n  n_differences: int64 not null\n" in capsys.readouterr().out
    assert main(["schema", "judge", "--decoding"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["required"] == ["differences", "overall"]


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "claimdiff.cli", "--help"],
                            capture_output=True, text=True, check=True)
    assert "judge" in result.stdout


def test_beam_options_pass_and_typos_are_refused(tmp_path: Path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"image": "missing.png", "reference": "A.", "caption": "B."})
                        + "\n")
    base = ["judge", "--manifest", str(manifest), "--set", "run.max_failure_share=1"]
    # `--runner` is Beam's, not a prefix of claimdiff's `--runner-preset`
    assert main([*base, "--output", str(tmp_path / "a"), "--runner=FnApiRunner",
                 "--direct_num_workers=1"]) == EXIT_OK
    capsys.readouterr()
    assert main([*base, "--output", str(tmp_path / "b"), "--modle", "/m"]) == EXIT_USAGE
    assert "--modle /m (did you mean --model?)" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--config", "/nonexistent/c.yaml"], "cannot read --config /nonexistent/c.yaml"),
    (["--set", "judge.model=["], "--set judge.model is not valid YAML"),
    (["--judge", "transformers", "--model", "/nonexistent/model"],
     "judge.model '/nonexistent/model': no such folder"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, capsys, extra: list[str],
                                           message: str):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    code = main(["judge", "--manifest", str(manifest), "--output", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert message in err
    assert "Traceback" not in err


def test_judge_help_examples_keep_their_lines(capsys):
    with pytest.raises(SystemExit):
        main(["judge", "--help"])
    lines = capsys.readouterr().out.splitlines()
    assert any(line.strip().startswith("--judge vllm --model") for line in lines)
    assert any(line.strip().startswith("--judge openai --base-url") for line in lines)


def test_a_model_that_does_not_load_is_a_failed_pipeline(tmp_path: Path, capsys, write_image,
                                                         write_manifest):
    write_image("a.png")
    manifest = write_manifest([{"image": "a.png", "reference": "A.", "caption": "B."}])
    (tmp_path / "not-a-model").mkdir()
    code = main(["judge", "--manifest", str(manifest), "--output", str(tmp_path / "o"),
                 "--judge", "transformers", "--model", str(tmp_path / "not-a-model")])
    err = capsys.readouterr().err
    assert code == EXIT_PIPELINE_FAILED
    assert err.startswith("claimdiff: error: the pipeline failed: ")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "run.json").exists()
