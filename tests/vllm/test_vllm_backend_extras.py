"""VllmBackend without vLLM installed: a helpful error, not a crash. Runs in every environment."""

from __future__ import annotations

import sys

import pytest

from claimdiff.errors import MissingExtraError
from claimdiff.judges.backends.vllm import VllmBackend


def test_missing_vllm_raises_import_error_with_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the next import of that name raise ImportError.
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingExtraError, match="vllm") as excinfo:
        VllmBackend("/nonexistent/model")
    assert isinstance(excinfo.value, ImportError)
    assert "pip install 'claimdiff[vllm]'" in str(excinfo.value)


def test_retry_factor_below_one_is_refused() -> None:
    from pydantic import ValidationError

    from claimdiff.config import VllmOptions

    with pytest.raises(ValidationError, match="max_tokens_retry_factor"):
        VllmOptions(max_tokens_retry_factor=0.5)
