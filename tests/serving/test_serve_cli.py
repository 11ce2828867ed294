"""`claimdiff serve` as a user starts it: a port the system picks, the labels judge, an image
root; it answers both endpoints and ends cleanly on Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from claimdiff.io import http as claimdiff_http
from tests.conftest import diff, gold
from tests.serving.conftest import WAIT_S


def post(url: str, payload: object) -> tuple[int, dict[str, object]]:
    response = claimdiff_http.request("POST", url, deadline_s=WAIT_S, max_bytes=2**20,
                                      body=json.dumps(payload).encode(),
                                      headers={"Content-Type": "application/json"})
    return response.status, json.loads(response.body)


def test_claimdiff_serve(tmp_path: Path, image: Path) -> None:
    with subprocess.Popen(
            [sys.executable, "-m", "claimdiff.cli", "serve", "--port", "0", "--image-root",
             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) as process:
        try:
            served(process, image)
        finally:
            if process.poll() is None:
                process.kill()


def served(process: subprocess.Popen[str], image: Path) -> None:
    """Both endpoints, then Ctrl-C."""
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.match(r"claimdiff serve: (http://127\.0\.0\.1:\d+) \(judge labels, "
                     r"primary reward relative\)", line)
    assert found, line
    url = found.group(1)
    labelled = json.dumps(gold(diff("count", "three dogs", "two dogs", "reference",
                                    actor_error=("count", 3))))
    status, body = post(url + "/score", {"items": [
        {"image": str(image), "reference": "Two dogs.", "caption": "Three dogs.",
         "gold": labelled}]})
    assert status == 200
    results = body["results"]
    assert isinstance(results, list)
    assert results[0]["ok"] is True
    assert results[0]["stats"]["n_actor_hallucination"] == 1
    # the released client sends no gold: the labels judge has nothing to answer with
    status, body = post(url + "/judge", {
        "response": "Three dogs.", "solution": "Two dogs.", "image_path": [str(image)],
        "reward_verifier": "claimdiff"})
    assert status == 422, body
    assert "rewards" not in body
    process.send_signal(signal.SIGINT)
    assert process.wait(WAIT_S) == 0, process.stderr.read() if process.stderr else ""
