"""Shared fixtures: small images and manifests written to real files (or memory://)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from claimdiff.sample_data import png_bytes


def gold(*differences: dict[str, Any], overall: str = "reference") -> dict[str, Any]:
    return {"differences": list(differences), "overall": overall}


def diff(aspect: str, actor: str | None, reference: str | None, judgment: str,
         actor_error: tuple[str, int | None] | None = None,
         reference_error: tuple[str, int | None] | None = None) -> dict[str, Any]:
    def error(e: tuple[str, int | None] | None) -> dict[str, Any] | None:
        return None if e is None else {"type": e[0], "detail": "", "severity": e[1]}

    return {"aspect": aspect, "actor_claim": actor, "reference_claim": reference,
            "actor_span": None, "reference_span": None, "judgment": judgment,
            "actor_error": error(actor_error), "reference_error": error(reference_error),
            "confidence": 0.9}


@pytest.fixture
def write_image(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, color: tuple[int, int, int] = (200, 30, 30),
              size: tuple[int, int] = (32, 24)) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(Image.new("RGB", size, color)))
        return path

    return write


@pytest.fixture
def write_manifest(tmp_path: Path) -> Callable[[list[dict[str, Any]], str], Path]:
    def write(rows: list[dict[str, Any]], name: str = "manifest.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A clean labels-judge run on 8 synthetic scenes, with a lambda sweep, two-pass
    verification and position swaps, made through the CLI (`tests/quality_support.py`)."""
    from tests.quality_support import make_synthetic_run

    return make_synthetic_run(tmp_path_factory.mktemp("quality"))
