"""A tiny random-weight LLaVA-style image-text-to-text model, built offline for tests.

Model hubs are unreachable on the test machines, so tests build their own checkpoint: a byte-level
BPE tokenizer trained on a few sentences, a 2-layer CLIP vision tower, a 2-layer Llama text model,
and a `LlavaProcessor` whose image processor is the PIL backend (no torchvision needed). The folder
loads with `AutoProcessor.from_pretrained` and `AutoModelForImageTextToText.from_pretrained`.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# A 56x56 image with 14-pixel patches gives 4*4 = 16 patch tokens (+1 CLS that "default"
# feature selection drops), which keeps prompts short.
IMAGE_SIZE = 56
PATCH_SIZE = 14
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2

IMAGE_TOKEN = "<image>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END, IMAGE_TOKEN]

# ChatML; content is a string or a list of parts, image parts become the processor's image token,
# which the processor then expands to IMAGE_TOKENS copies.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "A brown dog runs across a green field next to a red ball.",
    "Two people sit on a bench under a large tree in the park.",
    "The caption says three cats, but the image shows only two cats.",
    '{"differences": [{"aspect": "count", "judgment": "reference"}], "overall": "tie"}',
    "A white boat floats on the blue lake while the sun sets behind hills.",
    "actor_claim reference_claim actor_span reference_span confidence severity detail type",
]


def train_tokenizer(
    *, special_tokens: list[str], pad_token: str, extra_special_tokens: list[str],
    chat_template: str, model_max_length: int,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained offline on a few sentences; ChatML end-of-turn is the EOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=special_tokens,
        # Every byte must be a token, or a grammar engine cannot spell arbitrary JSON.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=pad_token,
        extra_special_tokens=extra_special_tokens,
        chat_template=chat_template,
        model_max_length=model_max_length,
    )


# Room for the full judge prompt with a long synthetic reference (about 2,200 tokens with this
# small vocabulary) plus an answer: the backend refuses prompts past the model's context.
MAX_POSITIONS = 8192


def _build_tokenizer() -> PreTrainedTokenizerFast:
    return train_tokenizer(
        special_tokens=SPECIAL_TOKENS, pad_token=PAD_TOKEN,
        extra_special_tokens=[IM_START, IMAGE_TOKEN], chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_POSITIONS)


def build_tiny_llava(out_dir: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """Build a random-weight tiny LLaVA into `out_dir` (created if needed) and return `out_dir`.

    Same seed, same bytes: weights come from `torch.manual_seed(seed)` and the tokenizer training
    is deterministic.
    """
    import torch
    from transformers import (
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaImageProcessorPil,
        LlavaProcessor,
    )

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer()
    vocab = tokenizer.get_vocab()
    pad_id, eos_id, image_id = vocab[PAD_TOKEN], vocab[IM_END], vocab[IMAGE_TOKEN]

    # The PIL backend is chosen explicitly: the default torchvision backend needs a torchvision
    # build that matches the CPU torch, which PyPI does not offer. (On load, AutoProcessor still
    # prefers the torchvision class where torchvision imports, and falls back to PIL otherwise.)
    image_processor = LlavaImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by "default" selection
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )

    vision_config = CLIPVisionConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=64,
    )
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=pad_id,
        bos_token_id=None,
        eos_token_id=eos_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=image_id,
        image_seq_length=IMAGE_TOKENS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )

    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None
    )

    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
