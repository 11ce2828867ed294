"""B7 reward service: `claimdiff serve` under N concurrent clients, against the backend called
directly on the same requests.

The judge is the `labels` backend with a fixed pause per backend *call* plus a smaller one per
request (`--call-ms`, `--row-ms`), the cost shape of a GPU judge, where a batch costs little
more than one request. The direct baseline calls `RewardService.score` one request at a time
(what a reward function without batching does); the server gathers concurrent requests into
batches. Reported: requests per second, p50/p99 latency per request, the batch sizes the server
reached, and the ratio of the two throughputs. Every request is a distinct caption, so the
cache never answers.

    python -m benchmarks.reward_service [--quick] [--clients 1 8 32]
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.harness import Report, parser, percentile
from claimdiff.config import load_config
from claimdiff.io import http
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.judges.backends.labels import LabelsBackend
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.serving.rewards import RewardRequest, RewardService
from claimdiff.serving.server import RewardServer
from claimdiff.synth import write_synthetic


class PausedLabels:
    def __init__(self, call_s: float, row_s: float) -> None:
        self._call_s, self._row_s = call_s, row_s
        self._labels = LabelsBackend()

    @property
    def model_id(self) -> str:
        return self._labels.model_id

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        time.sleep(self._call_s + self._row_s * len(requests))
        return self._labels.judge(requests, decoding)


def requests_of(manifest: Path, count: int) -> list[RewardRequest]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    base = manifest.parent
    return [RewardRequest(image=str(base / row["image"]), reference=row["reference"],
                          caption=f"{row['caption']} (variant {i})",
                          gold=json.dumps(row["gold"]))
            for i, row in ((i, rows[i % len(rows)]) for i in range(count))]


def post(url: str, request: RewardRequest) -> float:
    body = json.dumps({"items": [{"image": request.image, "reference": request.reference,
                                  "caption": request.caption, "gold": request.gold}]})
    started = time.perf_counter()
    response = http.request("POST", url + "/score", deadline_s=600, max_bytes=2**22,
                            body=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status == 200, response.body
    assert json.loads(response.body)["results"][0]["ok"], response.body
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--clients", type=int, nargs="+", default=None)
    p.add_argument("--call-ms", type=float, default=40.0, help="pause per backend call")
    p.add_argument("--row-ms", type=float, default=2.0, help="pause per request in a call")
    args = p.parse_args(argv)
    clients = args.clients or ([1, 8] if args.quick else [1, 8, 32])
    per_client = 8 if args.quick else 32
    report = Report("reward_service", {"quick": args.quick, "call_ms": args.call_ms,
                                       "row_ms": args.row_ms, "per_client": per_client},
                    ["clients", "requests", "direct req/s", "served req/s", "served / direct",
                     "p50 ms", "p99 ms", "mean batch"])
    backend = PausedLabels(args.call_ms / 1000, args.row_ms / 1000)
    with tempfile.TemporaryDirectory(prefix="claimdiff-b7-") as tmp:
        manifest = Path(write_synthetic(str(Path(tmp) / "data"), n=4, seed=0))
        for n in clients:
            requests = requests_of(manifest, n * per_client)
            config = load_config(None, {"serve.port": 0, "serve.image_roots": [tmp],
                                        "serve.cache_size": 0})

            def factory(setup: JudgeSetup) -> PausedLabels:
                return backend

            direct = RewardService(config, backend_factory=factory, image_roots=None)
            started = time.perf_counter()
            for request in requests:
                assert direct.score([request])[0].ok
            direct_rps = len(requests) / (time.perf_counter() - started)

            server = RewardServer(config, backend_factory=factory)
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            try:
                post(server.url, requests[0])  # the judge loads on the first request
                started = time.perf_counter()
                with ThreadPoolExecutor(n) as pool:
                    latencies = list(pool.map(post, [server.url] * len(requests), requests))
                served_rps = len(requests) / (time.perf_counter() - started)
                health = json.loads(http.request("GET", server.url + "/health", deadline_s=60,
                                                 max_bytes=2**20).body)
            finally:
                server.stop()
                thread.join(60)
            sizes = health["recent_batch_sizes"][1:] or [1]
            report.add(**{"clients": n, "requests": len(requests),
                          "direct req/s": direct_rps, "served req/s": served_rps,
                          "served / direct": served_rps / direct_rps,
                          "p50 ms": 1000 * percentile(latencies, 50),
                          "p99 ms": 1000 * percentile(latencies, 99),
                          "mean batch": sum(sizes) / len(sizes)})
    report.notes.append("With one client the server adds its HTTP round trip and "
                        "serve.max_wait_ms (20 ms) of gathering to each request.")
    report.notes.append("served / direct above 1 with many clients is the batching: one "
                        "backend call answers a whole batch of concurrent requests.")
    report.finish(args.json)


if __name__ == "__main__":
    main()
