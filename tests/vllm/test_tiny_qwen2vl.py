"""The tiny Qwen2-VL fixture model: reproducible, loadable by transformers, image tokens bounded.

Its Qwen2-VL processor needs torchvision, which only the vLLM test environment has.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("vllm")
pytest.importorskip("torchvision")

import torch
from PIL import Image

from tests.support.tiny_qwen2vl import (
    IMAGE_PAD,
    MAX_IMAGE_TOKENS,
    build_tiny_qwen2vl,
)

pytestmark = pytest.mark.vllm


def test_same_seed_same_bytes(tiny_qwen_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_qwen2vl(tmp_path / "again", seed=0)
    names = sorted(p.name for p in tiny_qwen_dir.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert "model.safetensors" in names
    for name in names:
        assert (tiny_qwen_dir / name).read_bytes() == (again / name).read_bytes(), name
    assert sum(p.stat().st_size for p in again.iterdir()) < 4 * 2**20


def test_loads_with_auto_classes_and_bounds_image_tokens(tiny_qwen_dir: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")

    image_token_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    counts = {}
    for size in [(10, 10), (300, 200), (2000, 1500)]:
        inputs = processor(text=[text], images=[Image.new("RGB", size)], return_tensors="pt")
        counts[size] = int((inputs["input_ids"] == image_token_id).sum())
        with torch.inference_mode():
            logits = model(**inputs).logits
        assert logits.shape[-1] == model.get_output_embeddings().weight.shape[0]
    assert counts[(10, 10)] == 1  # min_pixels: one merged 28x28 patch
    assert counts[(2000, 1500)] <= MAX_IMAGE_TOKENS
    assert 1 < counts[(300, 200)] <= MAX_IMAGE_TOKENS

    # Byte-level BPE: arbitrary JSON, non-ASCII included, round-trips through the tokenizer.
    sample = '{"aspect":"couleur é ✓ 猫","x":[1,null]}'
    ids = processor.tokenizer(sample, add_special_tokens=False)["input_ids"]
    assert processor.tokenizer.decode(ids) == sample
