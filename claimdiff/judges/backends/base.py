"""The judge backend protocol: a batch of requests in, one typed raw answer per request out.

Backends only produce text. Parsing, validation, retries and the passes live in the judging
loop (`claimdiff.judges.loop`), so every backend gets the same guarantees and the raw text of
every answer is kept. A backend raises only for a failure of the whole batch; a request it
cannot answer gets an answer carrying one of the `JudgeRequestError` kinds
(`claimdiff.errors`), which the loop retries or fails by kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from claimdiff.errors import JudgeRequestError


class Role(StrEnum):
    """What a request asks: the first pass, the same pair with the captions' roles swapped, the
    verification of some claims, or a holistic score. Model backends answer every role the same
    way (the prompt says what is asked); the `labels` judge answers each from the gold."""

    JUDGE = "judge"
    SWAP = "swap"
    VERIFY = "verify"
    HOLISTIC = "holistic"


class JudgeRequest(BaseModel):
    """One judge call: an image, the rendered prompt text, and what the labels judge needs."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    key: str = Field(description="the cache key of the request (with its role for extra passes)")
    prompt: str
    image: Image.Image | None = None
    role: Role = Role.JUDGE
    gold: str | None = Field(default=None, description="the row's gold judge output, as JSON "
                             "text (what the labels judge answers from)")
    claim_ids: tuple[str, ...] = Field(
        default=(), description="the claims a verification request asks about, in order")
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
    """What a backend said for one request: the text, or the error that concerns this request.

    `finish_reason` is "stop" when generation ended by itself and "length" when it was cut at
    `max_tokens`. The counts are None where the backend cannot know them (the labels judge, a
    server that sends no `usage`); `transport_attempts` counts HTTP attempts (0 in-process),
    `length_retries` the times an answer cut at the budget was tried again with a larger one.
    """

    text: str | None
    finish_reason: Literal["stop", "length"] = "stop"
    error: JudgeRequestError | None = None
    prompt_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    new_tokens: int | None = None
    max_tokens: int | None = None
    transport_attempts: int = 0
    length_retries: int = 0
    extra: dict[str, str] = field(default_factory=dict)  # backend notes for logs only


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
