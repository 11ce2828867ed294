"""Credentials typed into URLs, and the configured key's value, never survive redaction."""

from __future__ import annotations

import pytest

from claimdiff.redaction import REDACTED, Redactor
from tests.support.linear import assert_linear

KEY = "sk-live-0123456789abcdef"


@pytest.mark.parametrize(("text", "secret"), [
    ("http://admin:hunter2@images.example/a.png", "hunter2"),
    ("https://ghp_tokenvalue123@github.example/x", "ghp_tokenvalue123"),
    ("s3://bucket/a.png?api_key=abc123xyz", "abc123xyz"),
    ("https://b.s3.amazonaws.com/a.jpg?X-Amz-Credential=AKIA1&X-Amz-Signature=f00d",
     "f00d"),
    ("https://acct.blob.core.windows.net/c/a.png?sv=2024&sig=Zm9vYmFy", "Zm9vYmFy"),
    ("gs://b/a.png?access_token=ya29.abc", "ya29.abc"),
    ("http://h/x?Password=p4ss&x=1", "p4ss"),
    ("ftp://user:pw@host/file", "pw"),
    (f"the judge echoed {KEY} back", KEY),
    (f'{{"raw": "Bearer {KEY}"}}', KEY),
])
def test_secrets_are_redacted(text: str, secret: str):
    redactor = Redactor((KEY,))
    redacted = redactor.text(text)
    assert secret not in redacted
    assert REDACTED in redacted
    assert redactor.text(redacted) == redacted  # idempotent


@pytest.mark.parametrize("text", [
    "s3://bucket/images/a.png", "http://images.example/a.png?size=large&page=2",
    "a caption with an email@example.com and a = sign", "x=1&y=2",
])
def test_text_without_secrets_is_unchanged(text: str):
    assert Redactor((KEY,)).text(text) == text


def test_nested_values_and_keys():
    value = {"base_url": "http://u:p@h/v1", "list": ["?token=t0k3n"], KEY: 1}
    assert Redactor((KEY,)).value(value) == {
        "base_url": f"http://{REDACTED}@h/v1", "list": [f"?token={REDACTED}"], REDACTED: 1}


def test_short_values_are_not_treated_as_secrets(monkeypatch):
    monkeypatch.setenv("CLAIMDIFF_SHORT", "ab")
    assert Redactor.from_env("CLAIMDIFF_SHORT").secrets == ()


@pytest.mark.parametrize("shape", ["at-signs", "query"])
def test_redaction_is_linear(shape: str):
    make = {"at-signs": lambda n: "http://" + "a" * n + "@" * 10,
            "query": lambda n: "?" + "&token=" * (n // 7)}[shape]
    assert_linear(Redactor((KEY,)).text, make, n=20_000)
