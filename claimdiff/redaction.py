"""Credentials never leave a run: not in rows, failure rows, `run.json`, messages or logs.

Users type credentials into places claimdiff stores: a password in a URL
(`https://user:pass@host/...`), a token as the URL's user (`https://ghp_x@host/`), a signed URL's
query (`?X-Amz-Signature=...`, `&sig=...`, `?api_key=...`), and the judge server's API key, which
a judge may even echo back in its answer. Everything claimdiff writes or prints goes through
`Redactor.text` / `Redactor.value`: URL user information becomes `<redacted>@`, the value of a
query parameter whose name says it is secret becomes `<redacted>`, and every configured secret
value (the API key read from `judge.openai.api_key_env`) becomes `<redacted>` wherever it
appears. The scans are linear in the text and skipped for text that cannot hold a URL or a
secret.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

REDACTED = "<redacted>"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,30}://)[^/?#\s@\"'<>]{1,512}@")
_NAME_CHAR = r"[^=&#;\s\"'<>]"
_SECRET_NAME = (rf"{_NAME_CHAR}{{0,64}}(?:key|token|secret|passw|pwd|signature|credential|auth"
                rf"|session){_NAME_CHAR}{{0,64}}|sig")
# a value, when there is one (an already redacted value starts with "<": left alone)
_SECRET_PARAM = re.compile(rf"(?i)([?&;](?:{_SECRET_NAME})=)[^&#;\s\"'<>]+")
# Secrets shorter than this are not scrubbed by value: replacing every "ab" would garble text.
_MIN_SECRET_CHARS = 8


@dataclass(frozen=True)
class Redactor:
    """Redacts URL credentials, secret query values and the given secret values."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, *names: str) -> Redactor:
        """With the values of the environment variables `names` (those that are set)."""
        values = (os.environ.get(name) or "" for name in names if name)
        return cls(tuple(sorted({v for v in values if len(v) >= _MIN_SECRET_CHARS},
                                key=len, reverse=True)))

    def text(self, text: str) -> str:
        """
        >>> Redactor(("sk-test-123456",)).text(
        ...     "https://u:p@h/x?a=1&X-Amz-Signature=abc said sk-test-123456")
        'https://<redacted>@h/x?a=1&X-Amz-Signature=<redacted> said <redacted>'
        """
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "@" in text and "://" in text:
            text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
        if "=" in text:
            text = _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def value(self, value: Any) -> Any:
        """`value` with every string in it (dict keys included) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(item) for item in value)
        return value


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    return Redactor(tuple(secrets)).text(text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message (and its arguments)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redactor.text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
