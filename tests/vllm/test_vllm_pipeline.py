"""`judge.backend: vllm` inside the claimdiff Beam pipeline, end to end, on the tiny Qwen2-VL:
configuration, the factory, the engine built in the model handler's `load_model`, RunInference
batching, parsing, retries, outcomes, rewards, Parquet shards, the accounting, and the
prefix-cache hit rate in run.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

from tests.pipeline_support import read, run
from tests.vllm.settings import KV_CACHE_BYTES, LIMIT_MM, MAX_MODEL_LEN

pytestmark = pytest.mark.vllm


@pytest.fixture
def manifest(write_image, write_manifest) -> Path:
    rows = []
    for index, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        write_image(f"img/{index}.png", color=color, size=(48 + 16 * index, 40))
        for actor in ("a", "b"):
            rows.append({"image": f"img/{index}.png", "reference": f"A square, number {index}.",
                         "caption": f"Caption {actor} of image {index}.", "actor_id": actor})
    return write_manifest(rows)


def overrides(model: Path, max_new_tokens: int, **extra: Any) -> dict[str, Any]:
    """A CPU-sized engine, and decoding bounds a random-weight model finishes within."""
    return {
        "judge.backend": "vllm", "judge.model": str(model),
        "judge.vllm.dtype": "float32", "judge.vllm.max_model_len": MAX_MODEL_LEN,
        "judge.vllm.max_num_seqs": 8, "judge.vllm.kv_cache_memory_bytes": KV_CACHE_BYTES,
        "judge.vllm.limit_mm_per_prompt": LIMIT_MM, "judge.vllm.enforce_eager": True,
        # the in-process runner has one SDK process: no need for Beam's shared-model proxy
        "judge.vllm.share_across_processes": False,
        "judge.max_differences": 1, "judge.max_string_chars": 4,
        "judge.max_batch_size": 4, "judge.max_new_tokens": max_new_tokens, **extra,
    }


@pytest.mark.parametrize("shared", [False, True], ids=["own-engine", "shared-engine"])
def test_vllm_backend_judges_through_the_pipeline(tiny_qwen_dir, manifest, tmp_path,
                                                  shared: bool) -> None:
    """With `shared`, the engine lives behind Beam's multi-process shared-model proxy, as it
    does by default on a worker machine with several SDK processes."""
    out = tmp_path / "run"
    result = run(manifest, out, overrides(
        tiny_qwen_dir, 384, **{"judge.vllm.share_across_processes": shared}))

    assert result.status == "ok"
    assert result.accounting.rows_in == 6
    assert result.accounting.rows_judged == 6
    assert result.accounting.balanced is True
    assert result.judge_model == str(tiny_qwen_dir)
    assert result.counters["claimdiff.judge/num_inferences"] == 6
    rewards = read(out, "rewards")
    assert {r["status"] for r in rewards} == {"ok"}
    assert all(0.0 <= r["reward"] <= 1.0 for r in rewards)
    for row in read(out, "differences"):
        assert row["judge_model"] == str(tiny_qwen_dir)
        assert row["actor_claim"] or row["reference_claim"]
    # Two captions per image: the second one's prompt prefix (image + instructions) is cached.
    stats = result.judge_stats
    assert stats["prompt_tokens"] > 0
    assert 0.0 < stats["prefix_cache_hit_rate"] < 1.0


def test_two_pass_verification_shares_the_engine(tiny_qwen_dir, manifest, tmp_path) -> None:
    """Verification requests per difference go to the same engine, each with a schema naming
    its claims (so even a random model answers exactly those), and share the image prefix of
    their sample."""
    out = tmp_path / "run"
    result = run(manifest, out, overrides(
        tiny_qwen_dir, 384, **{"judge.mode": "two_pass", "judge.verify_granularity": "difference",
                               "run.max_failure_share": 1.0}))
    assert result.accounting.balanced is True
    assert result.accounting.rows_in == 6
    assert result.accounting.rows_judged == 6
    differences = read(out, "differences")
    stats = result.judge_stats
    assert result.counters["claimdiff.judge/verify_requests"] == len(differences)
    assert stats["verify_differences"] == len(differences)
    assert 0.0 <= stats["verify_disagreement_rate"] <= 1.0
    assert all(d["first_judgment"] is not None for d in differences)
    assert stats["prefix_cache_hit_rate"] > 0.0


def test_cut_answers_become_failure_rows(tiny_qwen_dir, manifest, tmp_path) -> None:
    out = tmp_path / "run"
    result = run(manifest, out, overrides(tiny_qwen_dir, 5, **{"judge.max_attempts": 2,
                                                                "run.max_failure_share": 1.0}))

    assert result.accounting.balanced is True
    assert result.accounting.failures_by_stage == {"judge": 6}
    # The backend retried each cut answer once with 10 tokens before the handler saw it, and
    # the handler does not try the same budget again.
    assert result.counters["claimdiff.judge/answers_cut_at_max_tokens"] == 6
    assert result.judge_stats["length_retries"] == 6
    for failure in read(out, "failures"):
        assert failure["error_class"] == "JudgeOutputError"
        assert failure["attempts"] == 1
        assert "answer cut at the token budget (10 new tokens)" in failure["message"]
        assert failure["raw_output"].startswith("{")
