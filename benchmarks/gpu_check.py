"""One short GPU check of the judge backends (run where a GPU machine is lent; never in CI).

    python benchmarks/gpu_check.py [--requests 32] [--max-new-tokens 384]

Builds the tiny random-weight LLaVA of the tests offline, then judges the same requests with the
`transformers` backend on the CPU and on the GPU (float32), and, where `vllm` imports (the
`claimdiff[vllm]` extra) and a tiny Qwen2-VL can be built (needs torchvision), with the `vllm`
backend on the same requests. Prints a table: requests/s, the share of
schema-valid answers, and agreement with the CPU answers (float32 kernels on a GPU can round
differently, so agreement below 1.0 is a finding to record, not a failure).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.base import Decoding, JudgeRequest, RawAnswer
from claimdiff.judges.parsing import parse_judge_output
from claimdiff.judges.prompting import load_prompt
from claimdiff.schemas.judge import decoding_schema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.tiny_vlm import build_tiny_llava

SCHEMA = decoding_schema(max_differences=1, max_string_chars=4)


def make_requests(count: int) -> list[JudgeRequest]:
    prompt = load_prompt("single_pass")
    return [
        JudgeRequest(
            key=str(i),
            prompt=prompt.render(reference=f"A square, number {i}.", caption=f"Caption {i}."),
            image=Image.new("RGB", (64 + i % 5 * 8, 48), ((37 * i) % 256, 90, 200)))
        for i in range(count)
    ]


def valid_share(answers: list[RawAnswer]) -> float:
    valid = 0
    for answer in answers:
        try:
            parse_judge_output(answer.text)
        except JudgeOutputError:
            continue
        valid += 1
    return valid / len(answers)


def timed(backend: object, requests: list[JudgeRequest], decoding: Decoding,
          batch: int) -> tuple[list[RawAnswer], float]:
    started = time.perf_counter()
    answers: list[RawAnswer] = []
    for start in range(0, len(requests), batch):
        answers += backend.judge(requests[start:start + batch], decoding)  # type: ignore[attr-defined]
    return answers, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=384)
    args = parser.parse_args()

    import torch

    from claimdiff.judges.transformers_backend import TransformersBackend

    requests = make_requests(args.requests)
    decoding = Decoding(max_new_tokens=args.max_new_tokens)
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        llava = build_tiny_llava(Path(tmp) / "llava")
        cpu_answers, cpu_s = timed(TransformersBackend(str(llava), SCHEMA, device="cpu"),
                                   requests, decoding, args.batch)
        rows.append(("transformers cpu", len(requests) / cpu_s, valid_share(cpu_answers), 1.0))
        if torch.cuda.is_available():
            gpu = TransformersBackend(str(llava), SCHEMA, device="cuda")
            timed(gpu, requests[: args.batch], decoding, args.batch)  # warm-up
            gpu_answers, gpu_s = timed(gpu, requests, decoding, args.batch)
            same = sum(a.text == b.text for a, b in zip(cpu_answers, gpu_answers, strict=True))
            rows.append(("transformers cuda", len(requests) / gpu_s, valid_share(gpu_answers),
                         same / len(requests)))
        else:
            print("no CUDA device: GPU rows skipped")
        try:
            import vllm  # noqa: F401

            from tests.support.tiny_qwen2vl import build_tiny_qwen2vl
        except ImportError as exc:
            print(f"vllm check skipped: {exc}")
        else:
            from claimdiff.judges.vllm_backend import VllmBackend

            qwen = build_tiny_qwen2vl(Path(tmp) / "qwen")
            backend = VllmBackend(str(qwen), SCHEMA, dtype="float32", max_model_len=3072,
                                  limit_mm_per_prompt={"image": 1, "video": 0})
            vllm_answers, vllm_s = timed(backend, requests, decoding, len(requests))
            rows.append(("vllm (claimdiff backend)", len(requests) / vllm_s,
                         valid_share(vllm_answers), float("nan")))
            print(f"vllm backend stats: {backend.stats()}")

    print(f"{'backend':<28}{'req/s':>9}{'valid':>8}{'= cpu':>8}")
    for name, rate, valid, same in rows:
        print(f"{name:<28}{rate:>9.1f}{valid:>8.2f}{same:>8.2f}")


if __name__ == "__main__":
    main()
