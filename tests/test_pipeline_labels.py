"""The judge pipeline end to end with the `labels` judge, on a real Beam runner.

Every case is hand-checkable: the gold differences are written here and the rewards worked
out by hand (weights 1 -> 1.0, 2 -> 1.25, 3 -> 1.6).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image

from claimdiff.errors import ConfigError
from claimdiff.pipelines import outputs
from claimdiff.synth.render import png_bytes
from tests.conftest import diff, gold
from tests.pipeline_support import read, run
from tests.support.judging import LoggedLabels, logged_calls


def saved_decoding(out: Path) -> dict:
    return outputs.read_run_manifest(str(out)).decoding

REF = "Two dogs on a red sofa."
COUNT_ERROR = gold(diff("number of dogs", "Three dogs.", "Two dogs.", "reference",
                        actor_error=("count_mismatch", 3)))
OMISSION = gold(diff("sofa colour", None, "The sofa is red.", "reference",
                     actor_error=("color_omission", 2)),
                diff("dogs", "Two dogs.", "Two dogs.", "both_supported"))


@pytest.fixture
def manifest(tmp_path: Path, write_image, write_manifest) -> Path:
    write_image("img/good.png")
    (tmp_path / "img/corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (tmp_path / "img/truncated.png").write_bytes(
        png_bytes(Image.effect_noise((64, 64), 60))[:250])
    (tmp_path / "img/bomb.png").write_bytes(png_bytes(Image.new("RGB", (3000, 3000))))
    rows = [
        {"image": "img/good.png", "reference": REF, "caption": "Two dogs on a red sofa.",
         "actor_id": "faithful", "gold": gold(overall="tie"), "split": "train"},
        {"image": "img/good.png", "reference": REF, "caption": "Three dogs on a red sofa.",
         "actor_id": "count", "gold": COUNT_ERROR},
        {"image": "img/good.png", "reference": REF, "caption": "Two dogs on a sofa.",
         "actor_id": "omission", "gold": OMISSION},
        {"image": "img/corrupt.png", "reference": REF, "caption": "x", "gold": gold()},
        {"image": "img/truncated.png", "reference": REF, "caption": "x", "gold": gold()},
        {"image": "img/bomb.png", "reference": REF, "caption": "x", "gold": gold()},
        {"image": "img/missing.png", "reference": REF, "caption": "x", "gold": gold()},
        {"image": "img/good.png", "reference": REF},  # malformed: no caption
        {"image": "img/good.png", "reference": REF, "caption": "Bad gold.", "actor_id": "bad",
         "gold": {"differences": [{"aspect": "x", "judgment": "actor"}]}},  # no claims
        {"image": "img/good.png", "reference": REF, "caption": "No gold.", "actor_id": "nogold"},
    ]
    return write_manifest(rows)


OVERRIDES = {"run.max_failure_share": 1.0, "images.max_decode_pixels": 1_000_000}


def test_every_row_is_accounted_for(manifest: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = run(manifest, out, OVERRIDES, run_id="run-1")

    acc = result.accounting
    assert (acc.rows_in, acc.rows_judged, acc.rows_failed) == (10, 3, 7)
    assert acc.balanced
    assert result.status == "ok"
    assert acc.failures_by_stage == {"judge": 2, "load_image": 4, "validate": 1}
    assert acc.differences == 3

    failures = {f["row_index"]: f for f in read(out, "failures")}
    assert sorted(failures) == [3, 4, 5, 6, 7, 8, 9]  # each bad row exactly once
    assert "corrupt or truncated" in failures[3]["message"] or "not an image" in failures[3][
        "message"]
    assert "truncated" in failures[4]["message"]
    assert "decompression bomb" in failures[5]["message"]
    assert "image not found" in failures[6]["message"]
    assert failures[7]["stage"] == "validate"
    assert "caption" in failures[7]["message"]
    assert failures[7]["sample_id"] is None
    invalid = failures[8]
    assert (invalid["stage"], invalid["error_class"], invalid["attempts"]) == (
        "judge", "JudgeOutputError", 2)
    assert "actor_claim: Field required" in invalid["message"]
    assert json.loads(invalid["raw_output"])["differences"][0]["aspect"] == "x"
    assert (failures[9]["error_class"], failures[9]["attempts"]) == ("NoGoldError", 1)
    assert all(f["run_id"] == "run-1" for f in failures.values())

    rewards = {r["row_index"]: r for r in read(out, "rewards")}
    # every validated row has a rewards row; the malformed one (7) has no identity to carry
    assert sorted(rewards) == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    for index in (3, 4, 5, 6, 8, 9):
        assert rewards[index]["status"] == "failed"
        assert rewards[index]["reward"] is None
        assert rewards[index]["stats"] is None
        assert rewards[index]["failure_reason"]

    by_actor = {r["actor_id"]: r for r in rewards.values() if r["status"] == "ok"}
    values = {a: {v["name"]: v["value"] for v in r["rewards"]} for a, r in by_actor.items()}
    assert values["faithful"]["relative"] == 0.5
    assert values["faithful"]["actor_only"] == 1.0
    assert json.loads(by_actor["faithful"]["metadata"]) == {"split": "train"}
    # one sev-3 error on the only difference: 0.5 + 0.5 * (0 - 1.6) / 1.6
    assert values["count"]["relative"] == 0.0
    # omission sev 2 (1.25) on the only real difference; the spurious one is not counted
    assert values["omission"]["relative"] == 0.0
    assert by_actor["omission"]["stats"]["n_spurious"] == 1
    # lambda 0.5: the omission (1.25) per 100 words of the reference, cost / 5
    omission_rate = 1.25 * 100 / by_actor["omission"]["stats"]["reference_words"]
    assert values["omission"]["lambda_0.5"] == pytest.approx(math.exp(-0.5 * omission_rate / 5))
    assert by_actor["count"]["reward"] == values["count"]["relative"]
    # the texts and the judge's raw answer travel with every row (training needs no join)
    count_row = by_actor["count"]
    assert (count_row["caption"], count_row["reference"], count_row["image"]) == (
        "Three dogs on a red sofa.", REF, "img/good.png")
    assert json.loads(count_row["raw_answer"]) == COUNT_ERROR
    assert count_row["verify_answers"] is None
    assert (rewards[3]["caption"], rewards[3]["reference"]) == ("x", REF)

    differences = read(out, "differences")
    assert [(d["actor_id"], d["outcomes"]) for d in differences] == [
        ("count", ["actor_hallucination"]), ("omission", ["actor_omission"]),
        ("omission", ["spurious"])]
    assert differences[0]["actor_canonical_type"] == "count"
    assert all(d["judge_model"] == "labels" for d in differences)
    assert differences[0]["prompt_version"].startswith("single_pass@")
    assert differences[0]["cache_key"] == by_actor["count"]["cache_key"]
    assert differences[0]["decoding"] == by_actor["count"]["decoding"] == saved_decoding(out)

    saved = outputs.read_run_manifest(str(out))
    assert saved.accounting == acc
    assert saved.counters["claimdiff.manifest/rows_read"] == 10
    assert saved.counters["claimdiff.images/images_loaded"] == 1
    assert saved.distributions["claimdiff.judge/backend_call_ms"]["count"] >= 1
    assert sorted(p.name for p in (out / "rewards").iterdir()) == ["part-00000-of-00001.parquet"]


def test_failure_threshold_and_existing_output(manifest: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = run(manifest, out, {**OVERRIDES, "run.max_failure_share": 0.5})
    assert result.status == "failure_threshold_exceeded"
    assert result.failure_share == pytest.approx(0.7)
    with pytest.raises(ConfigError, match="already holds a run"):
        run(manifest, out, OVERRIDES)
    again = run(manifest, out, OVERRIDES, overwrite=True, run_id="second")
    assert again.status == "ok"
    assert {r["run_id"] for r in read(out, "rewards")} == {"second"}


def test_memory_filesystem_manifest_and_images(tmp_path: Path):
    import fsspec

    with fsspec.open("memory://claimdiff-test/data/img/a.png", "wb") as handle:
        handle.write(png_bytes(Image.new("RGB", (16, 16), (0, 0, 255))))
    with fsspec.open("memory://claimdiff-test/data/m.jsonl", "w") as handle:
        handle.write(json.dumps({"image": "img/a.png", "reference": "A blue square.",
                                 "caption": "A red square.", "gold": gold(diff(
                                     "colour", "It is red.", "It is blue.", "reference",
                                     actor_error=("color_mismatch", None)))}) + "\n")
    result = run("memory://claimdiff-test/data/m.jsonl", tmp_path / "out")
    assert (result.accounting.rows_judged, result.accounting.rows_failed) == (1, 0)
    [difference] = read(tmp_path / "out", "differences")
    assert (difference["actor_severity"], difference["actor_severity_source"]) == (2, "rule")


def test_empty_manifest_writes_typed_empty_datasets(tmp_path: Path, write_manifest):
    manifest = write_manifest([])
    result = run(manifest, tmp_path / "out")
    assert result.accounting.rows_in == 0
    assert result.status == "ok"
    assert read(tmp_path / "out", "rewards") == []


def test_paper_text_answers_flow_through_unchanged(tmp_path: Path, write_image, write_manifest):
    """`judge.output_format=paper_text`: answers in the paper's [DIFFERENCE n] blocks are parsed
    into the same records (here carried as gold text by the labels judge)."""
    write_image("a.png")
    answer = ("[DIFFERENCE 1]\nASPECT: number of dogs\nCAPTION_A_CLAIM: There are three dogs.\n"
              "CAPTION_B_CLAIM: There are two dogs.\nJUDGMENT: B\n"
              "CAPTION_A_ERROR: count_mismatch | three instead of two | 3\nCAPTION_B_ERROR: NA\n\n"
              "[OVERALL_WINNER]\nB\n")
    manifest = write_manifest([
        {"image": "a.png", "reference": REF, "caption": "Three dogs.", "gold": answer},
        {"image": "a.png", "reference": REF, "caption": "Two dogs.", "gold": "JUDGMENT: maybe"},
    ])
    result = run(manifest, tmp_path / "out", {"judge.output_format": "paper_text",
                                               "run.max_failure_share": 0.5})
    assert (result.accounting.rows_judged, result.accounting.rows_failed) == (1, 1)
    [difference] = read(tmp_path / "out", "differences")
    assert difference["outcomes"] == ["actor_hallucination"]
    assert (difference["actor_error_type"], difference["actor_severity"]) == ("count_mismatch", 3)
    assert difference["decoding"]["output_format"] == "paper_text"
    [failure] = read(tmp_path / "out", "failures")
    assert failure["raw_output"] == "JUDGMENT: maybe"
    assert result.prompt_name == "single_pass_paper"


def test_two_pass_and_swap_with_gold_labels(manifest: Path, tmp_path: Path):
    """Gold labels answer the verification (the verdicts their judgments imply) and the swapped
    roles (the mirrored gold): the plumbing runs end to end and, as it must, finds no noise."""
    out = tmp_path / "out"
    result = run(manifest, out, {**OVERRIDES, "judge.mode": "two_pass",
                                 "judge.verify_granularity": "difference",
                                 "judge.swap_fraction": 1.0})
    assert result.accounting.balanced
    assert (result.accounting.rows_judged, result.accounting.rows_failed) == (3, 7)
    assert "+verify@" in result.prompt_version
    noise = result.judge_stats
    # differences of the judged rows: count (1) + omission (2); the faithful row has none
    assert noise["verify_differences"] == 3
    assert noise["verify_disagreements"] == 0
    assert noise["swap_rows"] == 3
    assert noise["swap_difference_consistency"] == 1.0
    assert noise["swap_judgment_consistency"] == 1.0
    assert result.counters["claimdiff.judge/verify_requests"] == 3
    differences = read(out, "differences")
    assert [d["first_judgment"] for d in differences] == [d["judgment"] for d in differences]
    assert differences[0]["decoding"]["mode"] == "two_pass"
    rewards = {r["actor_id"]: r for r in read(out, "rewards") if r["status"] == "ok"}
    assert rewards["omission"]["swap"] == {"original_differences": 2, "swapped_differences": 2,
                                           "matched": 2, "judgment_agreements": 2}
    assert rewards["count"]["stats"]["verify_disagreements"] == 0
    verified = json.loads(rewards["count"]["verify_answers"][0])
    assert [v["claim_id"] for v in verified["verdicts"]] == ["1A", "1R"]
    from claimdiff.quality.summary import summarise

    assert ("verify_requests 3, verify_differences 3, verify_exempt 0, "
            "verify_disagreements 0") in summarise(str(out))


def test_weighted_rewards_by_hand(tmp_path: Path, write_image, write_manifest):
    """Severity weights change every preset: one actor error of severity 2 (1.25) against one
    reference error of severity 3 (1.6), on two real differences."""
    write_image("a.png")
    answer = gold(
        diff("sofa colour", None, "The sofa is red.", "reference",
             actor_error=("color_omission", 2)),
        diff("number of cats", "There is a cat.", "There are two cats.", "actor",
             reference_error=("count_mismatch", 3)))
    manifest = write_manifest([{"image": "a.png", "reference": REF, "caption": "A cat.",
                                "gold": answer}])
    run(manifest, tmp_path / "out")
    [row] = read(tmp_path / "out", "rewards")
    values = {v["name"]: v["value"] for v in row["rewards"]}
    actor, reference, denominator = 1.25, 1.6, 1.25 + 1.6  # larger side weight per difference
    assert values["relative"] == pytest.approx(0.5 + 0.5 * (reference - actor) / denominator)
    assert values["actor_only"] == pytest.approx(
        math.exp(-2.0 * actor / denominator) - 0.2 * (1 - math.exp(-actor / 4.0)) + 0.05 * 2 / 8)
    # lambda_0.5: no hallucination, the omission weighs 1.25, per 100 words of the reference
    omission_rate = 1.25 * 100 / row["stats"]["reference_words"]
    assert values["lambda_0.5"] == pytest.approx(math.exp(-(0.5 * omission_rate) / 5.0))
    assert row["stats"]["relative_denominator"] == pytest.approx(denominator)


def test_hostile_rows_fail_alone(tmp_path: Path, write_image, write_manifest):
    """A runaway caption, a NUL byte in a path, a caption that is no text: each fails its own row;
    the good row next to them is judged."""
    write_image("a.png")
    ok = {"image": "a.png", "reference": REF, "caption": "Two dogs.", "gold": gold()}
    manifest = write_manifest([
        ok,
        {**ok, "caption": "dog " * 30_000},
        {**ok, "image": "a\u0000.png"},
        {**ok, "caption": {"text": "nested"}},
    ])
    result = run(manifest, tmp_path / "out", {"run.max_failure_share": 1.0})
    assert result.accounting.balanced
    assert (result.accounting.rows_judged, result.accounting.rows_failed) == (1, 3)
    failures = {f["row_index"]: f for f in read(tmp_path / "out", "failures")}
    assert "over manifest.max_text_chars=50000" in failures[1]["message"]
    assert (failures[2]["stage"], failures[2]["error_class"]) == ("load_image", "ImageError")
    assert "must be text" in failures[3]["message"]


def test_a_backend_that_raises_fails_each_row_of_its_batch(tmp_path: Path, write_image,
                                                          write_manifest):
    """Beam dead-letters a batch whose backend call raises; each of its rows gets a failure row
    and a null reward, and the accounting still balances."""
    class Broken:
        model_id = "broken"

        def judge(self, requests, decoding):
            raise RuntimeError("CUDA error: device-side assert triggered")

    write_image("a.png")
    manifest = write_manifest([{"image": "a.png", "reference": REF, "caption": f"{n} dogs.",
                                "gold": gold()} for n in range(3)])
    result = run(manifest, tmp_path / "out", {"run.max_failure_share": 1.0},
                 backend_factory=lambda setup: Broken())
    assert result.accounting.balanced
    assert (result.accounting.rows_judged, result.accounting.rows_failed) == (0, 3)
    failures = read(tmp_path / "out", "failures")
    assert {f["error_class"] for f in failures} == {"RuntimeError"}
    assert all("failed on the whole batch" in f["message"] and "device-side assert"
               in f["message"] for f in failures)
    assert {f["judge_model"] for f in failures} == {"labels"}
    assert all(r["status"] == "failed" and r["reward"] is None
               for r in read(tmp_path / "out", "rewards"))


def test_accounting_catches_a_row_counted_twice(tmp_path: Path, write_image, write_manifest):
    """Totals alone would balance a lost row against a duplicated one: identities do not."""
    import pyarrow.parquet as pq

    from claimdiff.schemas.arrow import arrow_schema
    from claimdiff.schemas.rows import RewardRow

    write_image("a.png")
    manifest = write_manifest([
        {"image": "a.png", "reference": REF, "caption": "Two dogs.", "gold": gold()},
        {"image": "a.png", "reference": REF, "caption": "Three dogs.", "gold": gold()}])
    out = tmp_path / "out"
    run(manifest, out)
    shard = out / "rewards" / "part-00000-of-00001.parquet"
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[1] = {**rows[0], "actor_id": "other"}  # row 0 twice, row 1 lost: 2 ok rows still
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(RewardRow)), shard)
    accounting = outputs.account(str(out), rows_in=2)
    assert (accounting.rows_judged, accounting.duplicate_rows) == (2, 1)
    assert not accounting.balanced


@pytest.mark.parametrize(("overrides", "whole"), [
    ({}, True),  # whole batches from the first call, as a GPU judge needs them
    ({"judge.min_batch_size": 4}, True),
    ({"judge.min_batch_size": 1}, False),  # asked for: Beam's adaptive sizing starts at 1
])
def test_the_judge_gets_whole_batches_from_the_first_call(
        tmp_path: Path, write_image, write_manifest, overrides: dict, whole: bool):
    """Beam's adaptive batching starts at the smallest batch size and grows; by default that
    size is the largest, so no worker begins with a run of single-request calls."""
    log = tmp_path / "batches.log"
    for name in "abc":
        write_image(f"{name}.png")
    manifest = write_manifest([{"image": f"{name}.png", "reference": REF,
                                "caption": f"{n} dogs.", "gold": gold()}
                               for name in "abc" for n in range(4)])
    result = run(manifest, tmp_path / "out", {"judge.max_batch_size": 4, **overrides},
                 backend_factory=lambda setup: LoggedLabels(log))
    assert result.accounting.rows_judged == 12
    sizes = [len(call) for call in logged_calls(log)]  # in call order
    assert sum(sizes) == 12
    if whole:
        assert sizes == [4, 4, 4]
    else:  # how it grows from there depends on timings: only the start is fixed
        assert sizes[0] == 1
        assert len(sizes) > 3
