"""Settings shared by the vLLM tests: engine sizes for this CPU machine and the test schema."""

from __future__ import annotations

import json
from typing import Any

KV_CACHE_BYTES = 64 * 2**20
# Room for the project's judge prompt (~1,800 tokens in the tiny vocabulary), an image and an
# answer; the tiny model has 4,096 positions.
MAX_MODEL_LEN = 3072
LIMIT_MM = {"image": 1, "video": 0}


def small_schema() -> dict[str, Any]:
    """The project's decoding schema with bounds a random-weight model finishes within."""
    from claimdiff.schemas.judge import decoding_schema

    return decoding_schema(max_differences=1, max_string_chars=4)


def server_args(max_model_len: int = 512) -> list[str]:
    """`vllm serve` options for the tiny model on this CPU machine."""
    return [
        "--dtype", "float32",
        "--max-model-len", str(max_model_len),
        "--max-num-seqs", "8",
        "--enforce-eager",
        "--kv-cache-memory-bytes", str(KV_CACHE_BYTES),
        "--limit-mm-per-prompt", json.dumps(LIMIT_MM),
        "--structured-outputs-config",
        json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
    ]


# The server runs its engine in a subprocess of its own (the API server needs it); only the
# in-process engine of the tests above runs without one.
SERVER_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}


# The key and context of the session's real `vllm serve` (tests/vllm/conftest.py).
KEY_ENV = "CLAIMDIFF_TEST_VLLM_KEY"
KEY = "sk-claimdiff-vllm-test-5f1e2d3c4b5a"
SERVER_MAX_MODEL_LEN = 512
