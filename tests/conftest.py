"""Shared fixtures: small images and manifests written to real files (or memory://)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from claimdiff.synth.render import png_bytes


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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible server (moto) on loopback, for the session; its endpoint URL.

    Credentials and the endpoint go through the standard environment variables, which boto3,
    s3fs and Beam's S3 filesystem all read."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in _S3_ENV}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


_S3_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh, empty bucket on the loopback S3 server."""
    import uuid

    import boto3

    name = f"claimdiff-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name
