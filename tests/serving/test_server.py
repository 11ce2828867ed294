"""The reward server on loopback: the released protocol, refusals that are never rewards,
requests gathered into batches, a bounded queue, a batch the judge fails, the token, and the
`/score` batch endpoint with its client."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from claimdiff.io import http as claimdiff_http
from claimdiff.serving.client import RemoteScoreError, RemoteScorer
from claimdiff.serving.rewards import RewardRequest, RewardService
from tests.serving.conftest import WAIT_S, Running


def payload(image: Path | list[str] | None, caption: str = "Three dogs.", **fields: Any
            ) -> dict[str, Any]:
    """What the released reward manager posts for one completion."""
    body: dict[str, Any] = {
        "data_source": "claimdiff", "query": "Describe the image.", "prompt": "<image>Describe",
        "answer": "", "solution": "Two dogs.", "response": caption,
        "reward_verifier": "gemini_caption_diff", "reward_verifier_parm": "{}",
        "fmt_ratio": 0.0, "len_ratio": 0.0, "iter": 3, "data_index": 7,
        "image_path": [str(image)] if isinstance(image, Path) else image}
    body.update(fields)
    return body


def test_the_released_protocol(start: Callable[..., Running], image: Path) -> None:
    server = start({"rewards.presets": [{"kind": "normalized_diff", "name": "nd"},
                                        {"kind": "relative", "name": "relative"}],
                    "rewards.primary": "nd"})
    status, body = server.post("/judge", payload(image, fmt_ratio=0.5))
    assert status == 200, body
    rewards = body["rewards"]
    assert {"format_reward", "accuracy_reward", "final_reward", "nd_reward",
            "relative_reward"} <= set(rewards)
    assert all(isinstance(v, float) for v in rewards.values())
    assert rewards["format_reward"] == 1.0  # a non-empty answer, no think block asked for
    assert rewards["final_reward"] == pytest.approx(
        rewards["accuracy_reward"] / 1.5 + rewards["format_reward"] * 0.5 / 1.5)
    assert rewards["n_actor_hallucination_reward"] == 1.0
    # a preset named as the verifier scores with that preset
    status, by_name = server.post("/judge", payload(image, reward_verifier="relative",
                                                    fmt_ratio=None))
    assert status == 200
    assert by_name["rewards"]["accuracy_reward"] == rewards["relative_reward"]
    health = server.get("/health")
    assert health["judge_model"] == server.server.service.model_id == "labels"
    assert health["counters"]["cache_hits"] == 1


def _oversized(server: Running, image: Path) -> tuple[int, Any]:
    big = payload(image, caption="x" * (server.config.serve.max_body_bytes + 10))
    return server.post("/judge", big)


def _chunked(server: Running, image: Path) -> tuple[int, Any]:
    body = json.dumps(payload(image, caption="y" * (server.config.serve.max_body_bytes + 10)))
    connection = http.client.HTTPConnection(server.server.host, server.server.port,
                                            timeout=WAIT_S)
    try:
        chunks = (body[i:i + 65536].encode() for i in range(0, len(body), 65536))
        connection.request("POST", "/judge", body=chunks, encode_chunked=True,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


REFUSALS: list[tuple[str, Callable[[Running, Path], tuple[int, Any]], int, str | None]] = [
    ("answer not a judge output",
     lambda s, i: s.post("/judge", payload(i, caption="UNPARSEABLE")), 422, "judge"),
    ("no image", lambda s, i: s.post("/judge", payload(None)), 422, "validate"),
    ("two images", lambda s, i: s.post("/judge", payload([str(i), str(i)])), 422, "validate"),
    ("image outside the roots", lambda s, i: s.post("/judge", payload(["/etc/hostname"])),
     422, "load_image"),
    ("missing image", lambda s, i: s.post("/judge", payload([str(i) + ".gone"])), 422,
     "load_image"),
    ("blank reference", lambda s, i: s.post("/judge", payload(i, solution="  ")), 422,
     "validate"),
    ("unknown verifier", lambda s, i: s.post("/judge", payload(i, reward_verifier="math")),
     404, None),
    ("missing field", lambda s, i: s.post("/judge", {
        k: v for k, v in payload(i).items() if k != "solution"}), 400, None),
    ("caption not text", lambda s, i: s.post("/judge", payload(i, response=3)), 400, None),
    ("negative fmt_ratio", lambda s, i: s.post("/judge", payload(i, fmt_ratio=-1.0)), 400,
     None),
    ("verifier parameters not JSON",
     lambda s, i: s.post("/judge", payload(i, reward_verifier_parm="{oops")), 400, None),
    ("verifier parameters not an object",
     lambda s, i: s.post("/judge", payload(i, reward_verifier_parm="[1]")), 400, None),
    ("body not JSON", lambda s, i: (lambda r: (r.status, json.loads(r.body)))(
        claimdiff_http.request("POST", s.url + "/judge", deadline_s=WAIT_S, max_bytes=2**20,
                               body=b"{not json", headers={"Content-Type": "application/json"})),
     400, None),
    ("body over the limit", _oversized, 413, None),
    ("chunked body over the limit", _chunked, 413, None),
]


@pytest.mark.parametrize(("name", "send", "code", "stage"), REFUSALS,
                         ids=[r[0] for r in REFUSALS])
def test_a_request_that_cannot_be_scored_gets_no_reward(
        start: Callable[..., Running], image: Path, name: str,
        send: Callable[[Running, Path], tuple[int, Any]], code: int, stage: str | None) -> None:
    server = start({"serve.max_body_bytes": 8192})
    status, body = send(server, image)
    assert status == code, (name, body)
    assert "rewards" not in body, "a refusal carries no reward, not even 0.0"
    assert body["detail"], name
    if stage is not None:
        assert body["stage"] == stage, body
    # the server is still there for the next request
    status, body = server.post("/judge", payload(image))
    assert status == 200
    assert "final_reward" in body["rewards"]


def test_concurrent_requests_are_judged_in_batches(start: Callable[..., Running],
                                                   image: Path) -> None:
    server = start({"serve.max_batch": 8, "serve.max_wait_ms": 5.0}, opened=False)
    count = 20
    with ThreadPoolExecutor(count) as pool:
        # one completion in the crowd gets an answer that is not a judge output
        futures = [pool.submit(server.post, "/judge", payload(
            image, caption="UNPARSEABLE" if i == 7 else f"Dog {i}.")) for i in range(count)]
        server.wait_pending(count)  # all queued or in the (blocked) first batch
        server.gate.opened.set()
        answers = [f.result(WAIT_S) for f in futures]
    assert [status for status, _ in answers] == [422 if i == 7 else 200 for i in range(count)]
    assert "rewards" not in answers[7][1]
    assert answers[7][1]["stage"] == "judge"
    # the non-answer was asked again (judge.max_attempts) before it was refused
    assert sum(server.gate.batches) == count + server.config.judge.max_attempts - 1
    health = server.get("/health")
    batches = health["recent_batch_sizes"]
    assert health["batches"] == len(batches)
    assert sum(batches) == count
    assert max(batches) <= 8
    # the first batch took what had arrived; everything else waited and went in full batches
    assert len(batches) <= 1 + -(-(count - 1) // 8), batches


def test_a_full_queue_is_refused_busy_and_the_queued_ones_are_answered(
        start: Callable[..., Running], image: Path) -> None:
    server = start({"serve.max_pending": 4}, opened=False)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(server.post, "/judge", payload(image, caption=f"Cat {i}."))
                   for i in range(4)]
        server.wait_pending(4)
        status, body = server.post("/judge", payload(image, caption="One too many."))
        assert status == 503
        assert body["status"] == "busy"
        assert "rewards" not in body
        server.gate.opened.set()
        assert all(f.result(WAIT_S)[0] == 200 for f in futures)


def test_a_batch_the_judge_fails_is_retryable_and_the_server_stays(
        start: Callable[..., Running], image: Path) -> None:
    server = start()
    status, body = server.post("/judge", payload(image, caption="EXPLODE"))
    assert status == 503
    assert body["status"] == "failed"
    assert "fell over" in body["detail"]
    assert server.post("/judge", payload(image))[0] == 200


def test_a_request_not_scored_in_time_is_answered_504(start: Callable[..., Running],
                                                      image: Path) -> None:
    server = start({"serve.request_timeout_s": 0.2}, opened=False)
    status, body = server.post("/judge", payload(image))
    assert status == 504
    assert body["status"] == "timeout"
    assert "rewards" not in body


def test_the_token(start: Callable[..., Running], image: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMDIFF_TEST_TOKEN", "s3cret-token")
    server = start({"serve.token_env": "CLAIMDIFF_TEST_TOKEN"})
    assert server.post("/judge", payload(image))[0] == 401
    assert server.post("/judge", payload(image), {"Authorization": "Bearer wrong"})[0] == 401
    status, body = server.post("/judge", payload(image),
                               {"Authorization": "Bearer s3cret-token"})
    assert status == 200, body
    scorer = RemoteScorer(server.url, token="s3cret-token")
    assert scorer.score([RewardRequest(image=str(image), reference="Two dogs.",
                                       caption="Three dogs.")])[0].ok


def test_the_batch_endpoint_and_its_client_match_the_service(
        start: Callable[..., Running], image: Path) -> None:
    server = start()
    pixels = Image.open(image)
    pixels.load()
    requests = [
        RewardRequest(image=str(image), reference="Two dogs.", caption="Three dogs."),
        RewardRequest(image=image.read_bytes(), reference="Two dogs.", caption="Four dogs."),
        RewardRequest(image=pixels, reference="Two dogs.", caption="Five dogs."),
        RewardRequest(image=str(image), reference="Two dogs.", caption="UNPARSEABLE"),
        RewardRequest(image="/etc/hostname", reference="Two dogs.", caption="Six dogs."),
    ]
    remote = RemoteScorer(server.url).score(requests)
    local = RewardService(server.config, backend_factory=lambda setup: server.gate,
                          image_roots=server.config.serve.image_roots).score(requests)
    assert [s.ok for s in remote] == [True, True, True, False, False]
    for index, (r, loc) in enumerate(zip(remote, local, strict=True)):
        assert (r.values, r.stage, r.error_class) == (loc.values, loc.stage, loc.error_class)
        # In-memory pixels travel as PNG: the server keys the file it receives, the service
        # the pixels themselves (documented in README "Rewards during RL"); the rest are the
        # same bytes on both sides, so the same key.
        assert (r.cache_key == loc.cache_key) is (index != 2)
        assert r.reward == loc.reward
        assert (r.stats == loc.stats) if r.ok else r.stats is None


def test_the_batch_endpoint_checks_each_item(start: Callable[..., Running],
                                             image: Path) -> None:
    server = start()
    items = [{"image": str(image), "reference": "Two dogs.", "caption": "Three dogs."},
             {"image_base64": "%%%", "reference": "Two dogs.", "caption": "Three dogs."},
             {"reference": "Two dogs.", "caption": "Three dogs."},
             {"image": str(image), "image_base64": base64.b64encode(image.read_bytes()).decode(),
              "reference": "Two dogs.", "caption": "Three dogs."}]
    status, body = server.post("/score", {"items": items})
    assert status == 200
    results = body["results"]
    assert [r["ok"] for r in results] == [True, False, False, False]
    assert results[0]["preset"] == server.config.rewards.primary
    assert [r["stage"] for r in results[1:]] == ["load_image", "validate", "validate"]
    assert all(r["reward"] is None for r in results[1:])
    assert server.post("/score", {"items": items, "preset": "nope"})[0] == 404
    assert server.post("/score", {"items": "all of them"})[0] == 400


def test_the_client_gives_up_on_a_server_that_stays_busy(start: Callable[..., Running],
                                                         image: Path) -> None:
    server = start({"serve.max_pending": 1}, opened=False)
    pauses: list[float] = []
    with ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(server.post, "/judge", payload(image))
        server.wait_pending(1)
        scorer = RemoteScorer(server.url, retries=2, backoff_s=0.5, sleep=pauses.append)
        with pytest.raises(RemoteScoreError, match=r"not scored after 2 retries.*max_pending"):
            scorer.score([RewardRequest(image=str(image), reference="Two dogs.",
                                        caption="Busy?")])
        assert pauses == [0.5, 1.0]
        server.gate.opened.set()
        assert blocked.result(WAIT_S)[0] == 200
