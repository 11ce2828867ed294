"""A tiny random-weight Qwen2-VL, built offline, that loads in both transformers and vLLM.

Qwen2-VL is the architecture of the usual open judges, so vLLM runs it through the same model code
(M-RoPE, dynamic-resolution vision tower, `<|image_pad|>` expansion) a real judge takes. The folder
loads with `AutoProcessor` / `AutoModelForImageTextToText` (the processor's default image backend
needs torchvision: use the vLLM test environment, `.venv-vllm`) and with `vllm.LLM`.

Sizes follow what vLLM's CPU kernels accept: text hidden 128 with 2 heads gives head_dim 64 (a
supported attention head size), one KV head, `mrope_section` summing to head_dim / 2; a 2-layer,
width-64 vision tower; images bounded to 112x112 pixels, i.e. at most 16 image tokens.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

from tests.support.tiny_vlm import train_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PATCH_SIZE = 14
MERGE_SIZE = 2
# One merged token covers (14 * 2)^2 pixels; min 1 token, max (112 / 28)^2 = 16 tokens per image.
MIN_PIXELS = 28 * 28
MAX_PIXELS = 112 * 112
MAX_IMAGE_TOKENS = MAX_PIXELS // (PATCH_SIZE * MERGE_SIZE) ** 2
# The project's judge prompt is ~1,800 tokens in this small vocabulary; the context must hold it,
# an image and an answer.
MAX_POSITIONS = 4096

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD]

# ChatML as in Qwen2-VL's own template, reduced to what claimdiff sends: content is a string or a
# list of parts; an image part (however it is spelled: vLLM passes {"type": "image"}, transformers
# {"type": "image", "image": ...}) becomes one <|image_pad|> between vision markers, which the
# processor expands to the image's token count.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

def _build_tokenizer() -> PreTrainedTokenizerFast:
    return train_tokenizer(
        special_tokens=SPECIAL_TOKENS, pad_token=PAD_TOKEN,
        extra_special_tokens=[IM_START, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD],
        chat_template=CHAT_TEMPLATE, model_max_length=MAX_POSITIONS)


def build_tiny_qwen2vl(out_dir: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """Build a random-weight tiny Qwen2-VL into `out_dir` (created if needed); return `out_dir`.

    Same seed, same bytes: weights come from `torch.manual_seed(seed)` and the tokenizer training
    is deterministic.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer()
    vocab = tokenizer.get_vocab()
    pad_id, eos_id = vocab[PAD_TOKEN], vocab[IM_END]

    pixel_bounds = {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, **pixel_bounds
        ),
        # Qwen2VLProcessor requires a video processor; claimdiff never sends video.
        video_processor=Qwen2VLVideoProcessor(
            patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, **pixel_bounds
        ),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )

    head_dim = 64
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 2 * head_dim,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": MAX_POSITIONS,
            # M-RoPE splits each head's rotary half (head_dim / 2 = 32) over time, height, width.
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [8, 12, 12],
            },
            "bos_token_id": None,
            "eos_token_id": eos_id,
            "pad_token_id": pad_id,
        },
        vision_config={
            "depth": 2,
            "embed_dim": 64,
            "hidden_size": 2 * head_dim,  # the merger projects into the text hidden size
            "mlp_ratio": 2,
            "num_heads": 2,
            "patch_size": PATCH_SIZE,
            "spatial_merge_size": MERGE_SIZE,
            "temporal_patch_size": 2,
        },
        image_token_id=vocab[IMAGE_PAD],
        video_token_id=vocab[VIDEO_PAD],
        vision_start_token_id=vocab[VISION_START],
        vision_end_token_id=vocab[VISION_END],
        tie_word_embeddings=False,
    )

    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None
    )

    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
