"""`claimdiff export verl`: the fields verl's RLHFDataset and the released reward manager read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from claimdiff.cli import EXIT_OK, main
from claimdiff.io.datasets import read_rows
from claimdiff.schemas.rows import RewardRow
from claimdiff.training.verl import VerlConfig, export_verl, split_of


def _verl_messages(prompt: list[dict]) -> list[dict]:
    """What verl's RLHFDataset._build_messages does to a row with images: split each message's
    string content at <image>/<video> into structured parts."""
    messages = []
    for message in prompt:
        parts = []
        for segment in re.split("(<image>|<video>)", message["content"]):
            if segment == "<image>":
                parts.append({"type": "image"})
            elif segment:
                parts.append({"type": "text", "text": segment})
        messages.append({"role": message["role"], "content": parts})
    return messages


def test_verl_rows_are_what_verl_reads(synth_run: Path, tmp_path: Path, tiny_llava: Path):
    datasets = pytest.importorskip("datasets")
    from transformers import AutoProcessor

    from tests.support.tiny_vlm import IMAGE_TOKEN, IMAGE_TOKENS

    out = tmp_path / "verl"
    summary = export_verl(str(synth_run), str(out), VerlConfig(test_fraction=0.3))
    references = {r.sample_id: r.reference for r in read_rows(str(synth_run), "rewards",
                                                              RewardRow)}
    assert summary.rows_written == summary.samples_read == len(references)
    assert summary.extra["rows_by_split"]["test"] > 0
    processor = AutoProcessor.from_pretrained(str(tiny_llava))
    image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    seen = set()
    for split in ("train", "test"):
        dataset = datasets.load_dataset("parquet", data_files=str(out / split / "*.parquet"),
                                        split="train", cache_dir=str(tmp_path / "cache"))
        assert len(dataset) == summary.extra["rows_by_split"][split]
        assert [r["extra_info"]["index"] for r in dataset] == list(range(len(dataset)))
        for row in dataset:
            info, reward_model = row["extra_info"], row["reward_model"]
            assert row["data_source"] == "claimdiff"
            assert row["ability"] == "caption"
            assert info["split"] == split == split_of(info["id"], 0.3)
            assert reward_model["ground_truth"] == references[info["sample_id"]]
            assert reward_model["style"] == "caption"
            assert reward_model["verifier_parm"]["image_path"] == info["image_path"]
            assert Path(info["image_path"]).is_file()
            assert info["question"] == "Describe this image in detail."
            # as verl builds the prompt: one image part per <image>, one image per part
            messages = _verl_messages(row["prompt"])
            assert sum(p["type"] == "image" for m in messages for p in m["content"]) == len(
                row["images"]) == 1
            raw = processor.apply_chat_template(messages, add_generation_prompt=True,
                                                tokenize=False)
            inputs = processor(text=[raw], images=[row["images"][0].convert("RGB")],
                               return_tensors="pt")
            assert int((inputs["input_ids"] == image_id).sum()) == IMAGE_TOKENS
            seen.add(info["sample_id"])
    assert seen == set(references)


def test_verl_images_are_readable_without_datasets(synth_run: Path, tmp_path: Path):
    """Read as plain Parquet (pandas, verl's older readers), an image is {bytes, path}, which
    verl's process_image opens from the bytes."""
    export_verl(str(synth_run), str(tmp_path / "v"), VerlConfig())
    table = pq.read_table(next((tmp_path / "v" / "train").glob("*.parquet")))
    image = table.column("images").to_pylist()[0][0]
    assert image["bytes"].startswith(b"\x89PNG")
    assert image["path"].startswith("images/")
    assert not (tmp_path / "v" / "test").exists()


def test_cli_export_verl(synth_run: Path, tmp_path: Path, capsys):
    out = str(tmp_path / "v")
    assert main(["export", "verl", str(synth_run), "--output", out, "--data-source", "caps",
                 "--prompt", "Caption this."]) == EXIT_OK
    assert capsys.readouterr().out.startswith("verl: ")
    row = pq.read_table(next((tmp_path / "v" / "train").glob("*.parquet"))).to_pylist()[0]
    assert row["data_source"] == "caps"
    assert row["prompt"] == [{"role": "user", "content": "<image>Caption this."}]
    assert json.loads((tmp_path / "v.json").read_text())["dataset"] == "verl"
