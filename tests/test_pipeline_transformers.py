"""The judge pipeline end to end through the real `transformers` backend, on a tiny random-weight
LLaVA built offline: loading, batching through RunInference, constrained decoding, parsing,
retries and failure rows all run for real. A random model says nothing true about the images, so
the assertions are about mechanics and accounting, not about the judgments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("xgrammar")

from claimdiff.cli import EXIT_OK, EXIT_RUN_FAILED, main
from tests.pipeline_support import read
from tests.support.tiny_vlm import build_tiny_llava

# Bounds that let the random model finish well within the token budget (see the backend tests).
SMALL = ["--set", "judge.max_differences=1", "--set", "judge.max_string_chars=4",
         "--set", "judge.max_batch_size=4"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"), seed=0)


@pytest.fixture
def manifest(tmp_path: Path, write_image, write_manifest) -> Path:
    rows = []
    for index, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        write_image(f"img/{index}.png", color=color, size=(48 + 16 * index, 40))
        for actor in ("a", "b"):
            rows.append({"image": f"img/{index}.png", "reference": f"A square, number {index}.",
                         "caption": f"Caption {actor} of image {index}.", "actor_id": actor})
    return write_manifest(rows)


@pytest.mark.slow
def test_tiny_model_judges_through_the_pipeline(model_dir: Path, manifest: Path, tmp_path: Path,
                                                capsys):
    out = tmp_path / "run"
    code = main(["judge", "--manifest", str(manifest), "--output", str(out),
                 "--judge", "transformers", "--model", str(model_dir),
                 "--set", "judge.max_new_tokens=384", *SMALL])
    assert code == EXIT_OK, capsys.readouterr()
    run = json.loads((out / "run.json").read_text())
    assert run["accounting"]["rows_in"] == 6
    assert run["accounting"]["rows_judged"] == 6
    assert run["accounting"]["balanced"] is True
    assert run["judge_model"] == str(model_dir)
    assert run["counters"]["claimdiff.judge/num_inferences"] == 6

    rewards = read(out, "rewards")
    assert {r["status"] for r in rewards} == {"ok"}
    assert all(0.0 <= r["reward"] <= 1.0 for r in rewards)
    assert sum(r["stats"]["n_differences"] + r["stats"]["n_spurious"]
               + r["stats"]["n_unverifiable"] for r in rewards) == run["accounting"]["differences"]
    for row in read(out, "differences"):
        assert row["judge_model"] == str(model_dir)
        assert row["decoding"]["max_string_chars"] == 4
        assert row["actor_claim"] or row["reference_claim"]
        assert row["outcomes"]


@pytest.mark.slow
def test_cut_answers_are_failure_rows(model_dir: Path, manifest: Path, tmp_path: Path):
    """An answer cut at the token budget fails at once: greedy decoding at the same budget would
    only cut it again."""
    out = tmp_path / "run"
    code = main(["judge", "--manifest", str(manifest), "--output", str(out),
                 "--judge", "transformers", "--model", str(model_dir),
                 "--set", "judge.max_new_tokens=5", "--set", "judge.max_attempts=2", *SMALL])
    assert code == EXIT_RUN_FAILED
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failure_threshold_exceeded"
    assert run["accounting"]["balanced"] is True
    assert run["accounting"]["failures_by_stage"] == {"judge": 6}
    assert run["counters"].get("claimdiff.judge/retries", 0) == 0
    assert run["counters"]["claimdiff.judge/answers_cut_at_max_tokens"] == 6
    failures = read(out, "failures")
    assert len(failures) == 6
    for failure in failures:
        assert failure["error_class"] == "JudgeOutputError"
        assert failure["attempts"] == 1
        assert "answer cut at the token budget (5 new tokens)" in failure["message"]
        assert failure["raw_output"].startswith("{")
        assert "<actor_caption>" in failure["raw_input"]
    assert all(r["reward"] is None and r["status"] == "failed" for r in read(out, "rewards"))


@pytest.mark.slow
def test_two_pass_and_swap_through_the_tiny_model(model_dir: Path, manifest: Path,
                                                  tmp_path: Path):
    """The verification and swapped calls go through the real backend, each verification with
    a schema naming its own claims; a random model's verdicts are noise, but constrained that
    way even it answers every claim it is asked about, so every row is verified."""
    out = tmp_path / "run"
    code = main(["judge", "--manifest", str(manifest), "--output", str(out),
                 "--judge", "transformers", "--model", str(model_dir),
                 "--set", "judge.max_new_tokens=384", "--set", "judge.mode=two_pass",
                 "--set", "judge.swap_fraction=1.0", "--set", "run.max_failure_share=1.0",
                 *SMALL])
    assert code == EXIT_OK
    run = json.loads((out / "run.json").read_text())
    assert run["accounting"]["balanced"] is True
    assert run["accounting"]["rows_in"] == 6
    counters, noise = run["counters"], run["judge_stats"]
    assert run["accounting"]["rows_judged"] == 6
    assert read(out, "failures") == []
    differences = read(out, "differences")
    assert noise["verify_differences"] == len(differences) - noise["verify_exempt"]
    # one request per row with something to verify (granularity "sample", the default)
    assert counters["claimdiff.judge/verify_requests"] == len({d["row_index"] for d in differences})
    assert 0.0 <= noise["verify_disagreement_rate"] <= 1.0
    assert noise["swap_rows"] + noise["swap_failures"] == 6
    assert 0.0 <= noise["swap_difference_consistency"] <= 1.0
    for row in differences:
        assert row["first_judgment"] is not None
