"""The judge model's own special tokens, read from its tokenizer files without loading it.

Hugging Face tokenizers match every *added* token (special or not: `<|im_end|>`, `<image>`,
`[INST]`) verbatim in the text they tokenize, so a caption that contains one would put the real
token into the prompt. `defang` breaks the ones it is given; this module finds them, for a local
model folder or a hub id already in the local cache, from `tokenizer.json` (`added_tokens`),
`tokenizer_config.json` (`added_tokens_decoder`, the named special tokens and
`additional_special_tokens`) and `special_tokens_map.json`. Nothing is downloaded and no code
shipped with a model runs. A model whose files cannot be found (an OpenAI-compatible endpoint
serving a model named only by the server) has none known: the generic tag rules still apply.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
_NAMED = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
          "mask_token", "image_token", "video_token", "boi_token", "eoi_token")
_MAX_FILE_BYTES = 64 * 2**20


def _contents(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and isinstance(value.get("content"), str):
        yield value["content"]
    elif isinstance(value, list):
        for item in value:
            yield from _contents(item)


def _tokens_in(name: str, data: Any) -> Iterator[str]:
    if not isinstance(data, dict):
        return
    if name == "tokenizer.json":
        yield from _contents(data.get("added_tokens") or [])
        return
    decoder = data.get("added_tokens_decoder")
    if isinstance(decoder, dict):
        yield from _contents(list(decoder.values()))
    for key in (*_NAMED, "additional_special_tokens", "extra_special_tokens"):
        value = data.get(key)
        yield from _contents(list(value.values()) if isinstance(value, dict)
                             and "content" not in value else value)


def _folder(model: str) -> str | None:
    if os.path.isdir(model):
        return model
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return str(snapshot_download(model, local_files_only=True,
                                     allow_patterns=list(_FILES)))
    except Exception:  # not in the cache, not a hub id: nothing known
        return None


def special_tokens_of(model: str | None) -> frozenset[str]:
    """Every added token of `model`'s tokenizer (empty when its files are not on this machine)."""
    if not model or "://" in model:
        return frozenset()
    folder = _folder(model)
    if folder is None:
        log.info("no tokenizer files for %s on this machine: its special tokens are unknown",
                 model)
        return frozenset()
    found: set[str] = set()
    for name in _FILES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or os.path.getsize(path) > _MAX_FILE_BYTES:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            continue
        found.update(t for t in _tokens_in(name, data) if t.strip())
    return frozenset(found)
