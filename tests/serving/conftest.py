"""Shared by the serving tests: a judge backend the test opens like a gate, and a reward
server of it running on loopback in a thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from claimdiff.config import ClaimdiffConfig, load_config
from claimdiff.io import http as claimdiff_http
from claimdiff.judges.backends.base import Decoding, JudgeBackend, JudgeRequest, RawAnswer
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.serving.server import RewardServer
from claimdiff.synth.render import png_bytes
from tests.conftest import diff, gold

WAIT_S = 120.0  # an upper bound on conditions that do happen, never a pace the test relies on

ANSWER = json.dumps(gold(diff("count", "three dogs", "two dogs", "reference",
                              actor_error=("count", 3))))


@dataclass
class Gate:
    """A judge backend that answers once its gate is open: a valid answer, "not json" for a
    caption asking for it, and a whole-batch failure for a caption that says EXPLODE."""

    opened: threading.Event = field(default_factory=threading.Event)
    batches: list[int] = field(default_factory=list)
    model_id: str = "gate"

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        assert self.opened.wait(WAIT_S), "the test never opened the gate"
        self.batches.append(len(requests))
        if any("EXPLODE" in r.prompt for r in requests):
            raise RuntimeError("the judge fell over")
        return [RawAnswer(text="not json" if "UNPARSEABLE" in r.prompt else ANSWER)
                for r in requests]


@dataclass
class Running:
    server: RewardServer
    gate: Gate
    config: ClaimdiffConfig

    @property
    def url(self) -> str:
        return self.server.url

    def get(self, path: str) -> Any:
        response = claimdiff_http.request("GET", self.url + path, deadline_s=WAIT_S,
                                          max_bytes=2**20)
        assert response.status == 200, response.body
        return json.loads(response.body)

    def post(self, path: str, payload: Any, headers: dict[str, str] | None = None
             ) -> tuple[int, Any]:
        response = claimdiff_http.request(
            "POST", self.url + path, deadline_s=WAIT_S, max_bytes=2**24,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", **(headers or {})})
        return response.status, json.loads(response.body)

    def wait_pending(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while self.get("/health")["pending"] < count:
            assert time.monotonic() < deadline, f"never {count} requests pending"
            time.sleep(0.02)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[tuple[RewardServer, threading.Thread, Gate]] = []

    def run(overrides: dict[str, Any] | None = None, *, opened: bool = True) -> Running:
        values = {"serve.port": 0, "serve.image_roots": [str(tmp_path)], **(overrides or {})}
        config = load_config(None, values)
        gate = Gate()
        if opened:
            gate.opened.set()

        def factory(setup: JudgeSetup) -> JudgeBackend:
            return gate

        server = RewardServer(config, backend_factory=factory)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        started.append((server, thread, gate))
        running = Running(server, gate, config)
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                assert running.get("/") == {"message": "Reward Judge Server"}
                return running
            except OSError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.05)

    yield run
    for server, thread, gate in started:
        gate.opened.set()
        server.stop()
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(Image.new("RGB", (32, 24), (20, 120, 40))))
    return path
