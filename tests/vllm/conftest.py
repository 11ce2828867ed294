"""Fixtures of the vLLM test environment (.venv-vllm, see scripts/setup_vllm_env.sh).

The modules that need vLLM skip themselves with `pytest.importorskip("vllm")`, so the main
environment collects this folder cleanly and runs only what needs no vLLM (the OpenAI backend
against a scripted loopback server, VllmServer with a stand-in command). Nothing here imports
vllm, torch or transformers at import time.

The in-process engine settings follow shared/notes/cpu-test-env.md: no engine subprocess (about
10 s less per engine), no OpenMP thread binding, eager mode (torch.compile would cost about 20 s)
and an explicit KV cache size (otherwise vLLM reserves most of the machine's memory).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from claimdiff.config import VllmOptions
from tests.vllm.settings import (
    KEY,
    KV_CACHE_BYTES,
    LIMIT_MM,
    MAX_MODEL_LEN,
    SERVER_ENV,
    SERVER_MAX_MODEL_LEN,
    server_args,
    small_schema,
)

if TYPE_CHECKING:
    from claimdiff.judges.backends.vllm import VllmBackend

# Read by vLLM when it is imported and when an engine starts, so set before any test imports it.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")


def pytest_configure(config: pytest.Config) -> None:
    # Declared here too so the folder works under --strict-markers whatever pyproject says.
    config.addinivalue_line("markers", "vllm: needs the vLLM test environment (.venv-vllm)")


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torchvision")
    from tests.support.tiny_qwen2vl import build_tiny_qwen2vl

    return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny_qwen2vl"), seed=0)


@pytest.fixture(scope="session")
def vllm_backend(tiny_qwen_dir: Path) -> VllmBackend:
    """One in-process engine for the whole session (the backend and pipeline tests share it)."""
    pytest.importorskip("vllm")
    from claimdiff.judges.backends.vllm import VllmBackend

    return VllmBackend(str(tiny_qwen_dir), small_schema(), vllm_options())


def vllm_options() -> VllmOptions:
    """Engine options for the tiny model on this CPU machine, as `judge.vllm` would hold them."""
    return VllmOptions(dtype="float32", max_model_len=MAX_MODEL_LEN, max_num_seqs=8,
                       kv_cache_memory_bytes=KV_CACHE_BYTES, limit_mm_per_prompt=LIMIT_MM,
                       enforce_eager=True)


@pytest.fixture(scope="session")
def vllm_server(tiny_qwen_dir: Path) -> Iterator[Any]:
    """One real `vllm serve` of the tiny model on loopback for the session (its start costs
    ≈25 s), with the test key in its environment."""
    pytest.importorskip("vllm")
    from claimdiff.serving.server_guard import group_alive
    from claimdiff.serving.vllm_server import VllmServer

    started = VllmServer(str(tiny_qwen_dir), args=server_args(SERVER_MAX_MODEL_LEN),
                         env=SERVER_ENV, api_key=KEY, startup_timeout_s=300)
    started.start()
    yield started
    started.stop()
    assert started.pid is not None
    assert not group_alive(started.pid)
