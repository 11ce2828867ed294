"""The judge backend protocol: a batch of requests in, one raw answer per request out.

Backends only produce text. Parsing, validation and retries live in `judges.handler`, so every
backend gets the same guarantees and the raw text of every answer is kept for failure rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field


class JudgeRequest(BaseModel):
    """One judge call: an image, the rendered prompt text, and gold labels where a row has them."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    key: str = Field(description="the cache key of the request")
    prompt: str
    image: Image.Image | None = None
    gold: str | None = Field(default=None, description="gold judge output (labels backend)")
    json_schema: dict[str, Any] | None = Field(
        default=None, description="replaces the backend's schema for this request (a "
        "verification answer has one of its own, naming its claims); a backend that decodes "
        "unconstrained ignores it")


@dataclass(frozen=True)
class Decoding:
    """Sampling parameters of one attempt. They are part of every row's cache key."""

    max_new_tokens: int = 1024
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class RawAnswer:
    """What a backend said for one request: text, or an error that concerns this request only.

    `finish_reason` is "stop" when generation ended by itself and "length" when it was cut at
    `max_new_tokens`; `error` is set (and `text` may be None) when the backend could not answer
    this request at all (no gold labels, prompt too long, ...).
    """

    text: str | None
    finish_reason: str = "stop"
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def request_schema(request: JudgeRequest, backend_schema: dict[str, Any] | None
                   ) -> dict[str, Any] | None:
    """The JSON schema that constrains one request: its own (a verification answer names its
    claims) in place of the backend's; none at all for a backend that decodes unconstrained."""
    if backend_schema is None:
        return None
    return request.json_schema if request.json_schema is not None else backend_schema


@runtime_checkable
class JudgeBackend(Protocol):
    """A model (or a label source) that answers judge requests in batches."""

    @property
    def model_id(self) -> str:
        """Identity of the model behind the answers (path or hub id, or `labels`)."""
        ...

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        """Answer every request, in order. Raise only for failures of the whole batch."""
        ...
