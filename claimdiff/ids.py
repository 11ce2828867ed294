"""Deterministic identities: content hashes, so reruns are idempotent and resumable."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_SEP = "\x1f"  # unit separator: cannot be confused with caption text boundaries


def _digest(*parts: str, length: int = 16) -> str:
    return hashlib.sha256(_SEP.join(parts).encode("utf-8")).hexdigest()[:length]


def sample_id(image: str, reference: str) -> str:
    """Default id of an (image, reference): a hash of the image URI as written and the text."""
    return _digest("sample", image, reference)


def actor_id(caption: str) -> str:
    """Default id of an actor caption: a hash of its text."""
    return _digest("actor", caption)


def cache_key(
    *,
    image_sha256: str,
    reference: str,
    caption: str,
    judge_model: str,
    prompt_version: str,
    decoding: dict[str, Any],
    gold: str | None = None,
) -> str:
    """Everything that determines a judge answer; equal keys may reuse each other's results.

    `gold` is the row's gold labels where they are the judge (the `labels` backend answers from
    them, so other labels are another answer), and None for a model judge, which never sees
    them. Without it the key is what it always was, so earlier runs' keys stay valid.
    """
    parts = [image_sha256, reference, caption, judge_model, prompt_version,
             json.dumps(decoding, sort_keys=True)]
    if gold is not None:
        parts.append(_digest("gold", gold, length=64))
    return _digest("judge", *parts, length=32)
