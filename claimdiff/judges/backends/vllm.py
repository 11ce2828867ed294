"""A judge backend that runs a vLLM engine in-process (`vllm.LLM`), batched, schema-constrained.

One `judge()` call is one `LLM.chat` over the batch (vLLM schedules it with continuous batching
and prefix caching), with the JSON schema enforced per request through
`SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))`.

Two things vLLM would otherwise do to a whole batch are handled per request here:
- A prompt longer than the context fails every request of the `LLM.chat` call, and in vLLM 0.32
  a prompt rejected after its image was processed also leaves the multi-modal processor cache
  out of step with the engine (the next request with the same image fails with
  `MultiModalCacheMissError`, and the in-process engine can hang afterwards). So prompt lengths
  are computed before submission, image tokens included, and a prompt that does not fit becomes
  a per-request error without ever reaching the engine.
- An answer cut at `max_tokens` is tried once more with a larger budget (capped by the context)
  before it is returned with finish_reason "length" for the handler to record.

vllm and transformers are imported lazily, so the rest of claimdiff works without them.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from claimdiff.config import VllmOptions
from claimdiff.errors import ContextOverflowError, JudgeUnavailableError, MissingExtraError
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer, request_schema

log = logging.getLogger(__name__)

# Finish reasons of a vLLM completion that carry a usable answer.
_ANSWERED = {"stop", "length"}


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], "vllm") from exc


@dataclass
class _Job:
    """One request on its way through the engine: its messages, size and token budget."""

    index: int
    messages: list[dict[str, Any]]
    prompt_tokens: int
    max_tokens: int
    json_schema: dict[str, Any] | None
    length_retries: int = 0


class _PromptSizer:
    """Counts a chat prompt's tokens the way vLLM will, image tokens included, before submission.

    The text is rendered with the model's chat template and tokenized without special tokens (the
    template writes them), as vLLM's chat path does. An image adds the difference between the
    processor's output with and without it for one placeholder. That difference depends on the
    image's size only, so it is computed once per size on a blank image of that size: the real
    image is never processed twice.
    """

    def __init__(self, processor: Any, mm_processor_kwargs: dict[str, Any] | None) -> None:
        self._processor = processor
        self._tokenizer = getattr(processor, "tokenizer", processor)
        self._mm_kwargs = dict(mm_processor_kwargs or {})
        self._image_tokens = functools.lru_cache(maxsize=4096)(self._image_tokens_uncached)

    def count(self, hf_messages: list[dict[str, Any]], image_size: tuple[int, int] | None) -> int:
        text = self._render(hf_messages)
        tokens = len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        if image_size is not None:
            tokens += self._image_tokens(image_size)
        return tokens

    def _render(self, hf_messages: list[dict[str, Any]]) -> str:
        text = self._processor.apply_chat_template(
            hf_messages, add_generation_prompt=True, tokenize=False
        )
        return str(text)

    def _image_tokens_uncached(self, image_size: tuple[int, int]) -> int:
        from PIL import Image

        probe = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ""}]}]
        text = self._render(probe)
        plain = len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        expanded = self._processor(
            text=[text],
            images=[Image.new("RGB", image_size)],
            add_special_tokens=False,
            **self._mm_kwargs,
        )["input_ids"][0]
        return len(expanded) - plain


class VllmBackend:
    """Judge with a local or hub image-text-to-text model on an in-process vLLM engine.

    Engine settings are vLLM's own (`max_model_len`, `max_num_seqs`, `gpu_memory_utilization` or
    `kv_cache_memory_bytes`, `tensor_parallel_size`, `enforce_eager`, ...); `engine_kwargs` passes
    any other `vllm.LLM` argument through. `limit_mm_per_prompt` defaults to one image, which is
    all claimdiff sends. `disable_any_whitespace` is an engine-level setting on purpose: vLLM 0.32
    ignores the per-request flag, and without it a weak model can emit whitespace until
    `max_tokens`. `max_tokens_retry_factor` is the budget multiplier of the one retry an answer
    cut at `max_tokens` gets (1 disables the retry).
    """

    def __init__(
        self,
        model: str,
        json_schema: dict[str, Any] | None = None,
        options: VllmOptions | None = None,
        *,
        seed: int = 0,
        trust_remote_code: bool = False,
        system_prompt: str | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        options = options or VllmOptions()
        vllm = _require("vllm")
        sampling = _require("vllm.sampling_params")
        transformers = _require("transformers")
        self._sampling_params = sampling.SamplingParams
        self._structured_outputs_params = sampling.StructuredOutputsParams

        self._model_name = model
        self._json_schema = json_schema
        self._system_prompt = system_prompt
        self._retry_factor = options.max_tokens_retry_factor
        # vllm.LLM runs one engine loop and is not thread-safe, while Beam shares one loaded
        # model between the threads of a worker process.
        self._lock = threading.Lock()
        self._estimate_warned = False

        engine: dict[str, Any] = {
            "model": model,
            "dtype": options.dtype,
            "max_model_len": options.max_model_len,
            "max_num_seqs": options.max_num_seqs,
            "tensor_parallel_size": options.tensor_parallel_size,
            "enforce_eager": options.enforce_eager,
            "seed": seed,
            "trust_remote_code": trust_remote_code,
            "limit_mm_per_prompt": dict(options.limit_mm_per_prompt),
            "structured_outputs_config": {
                "backend": options.structured_outputs_backend,
                "disable_any_whitespace": options.disable_any_whitespace,
            },
        }
        if mm_processor_kwargs:
            engine["mm_processor_kwargs"] = mm_processor_kwargs
        if options.gpu_memory_utilization is not None:
            engine["gpu_memory_utilization"] = options.gpu_memory_utilization
        if options.kv_cache_memory_bytes is not None:
            engine["kv_cache_memory_bytes"] = options.kv_cache_memory_bytes
        engine.update(engine_kwargs or {})
        self._llm = vllm.LLM(**engine)
        # The resolved context (vLLM may lower it to what the model supports).
        self._max_model_len = int(self._llm.model_config.max_model_len)

        processor = transformers.AutoProcessor.from_pretrained(
            engine.get("tokenizer") or model, trust_remote_code=trust_remote_code
        )
        self._sizer = _PromptSizer(processor, mm_processor_kwargs)
        if json_schema is not None:
            self._check_schema_compiles()

    @property
    def model_id(self) -> str:
        return self._model_name

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        if not requests:
            return []
        with self._lock:
            return self._judge(requests, decoding)

    def _judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        answers: list[RawAnswer | None] = [None] * len(requests)
        jobs: list[_Job] = []
        for index, request in enumerate(requests):
            job_or_error = self._plan(index, request, decoding)
            if isinstance(job_or_error, RawAnswer):
                answers[index] = job_or_error
            else:
                jobs.append(job_or_error)

        outputs = self._generate(jobs, decoding)
        retries = [job for job in jobs if self._should_retry(job, outputs[job.index])]
        for job in retries:
            grown = math.ceil(job.max_tokens * self._retry_factor)
            job.max_tokens = min(grown, self._max_model_len - job.prompt_tokens)
            job.length_retries += 1
        outputs.update(self._generate(retries, decoding))

        for job in jobs:
            answers[job.index] = self._answer(job, outputs[job.index])
        missing = [index for index, answer in enumerate(answers) if answer is None]
        if missing:
            raise RuntimeError(f"vLLM returned no output for requests {missing}")
        return [answer for answer in answers if answer is not None]

    def _plan(self, index: int, request: JudgeRequest, decoding: Decoding) -> _Job | RawAnswer:
        image = request.image
        image_size = None if image is None else (image.width, image.height)
        prompt_tokens = self._sizer.count(self._messages(request, for_vllm=False), image_size)
        # vLLM needs room for at least one generated token: a prompt of exactly max_model_len
        # tokens is rejected like a longer one.
        room = self._max_model_len - prompt_tokens
        if room < 1:
            # Not `prompt_tokens`: nothing was submitted, so nothing may count against the
            # run's prefix-cache hit rate.
            return RawAnswer(
                text=None,
                error=ContextOverflowError(
                    f"prompt of {prompt_tokens} tokens does not fit "
                    f"max_model_len={self._max_model_len}"),
            )
        return _Job(
            index=index,
            messages=self._messages(request, for_vllm=True),
            prompt_tokens=prompt_tokens,
            max_tokens=min(decoding.max_new_tokens, room),
            json_schema=request_schema(request, self._json_schema),
        )

    def _should_retry(self, job: _Job, output: Any) -> bool:
        completion = output.outputs[0]
        if completion.finish_reason != "length" or job.length_retries:
            return False
        # Only worth it when the budget can actually grow within the context.
        room = self._max_model_len - job.prompt_tokens
        return min(math.ceil(job.max_tokens * self._retry_factor), room) > job.max_tokens

    def _generate(self, jobs: Sequence[_Job], decoding: Decoding) -> dict[int, Any]:
        if not jobs:
            return {}
        params = [self._params(decoding, job.max_tokens, job.json_schema) for job in jobs]
        outputs = self._llm.chat([job.messages for job in jobs], params, use_tqdm=False)
        by_index: dict[int, Any] = {}
        for job, output in zip(jobs, outputs, strict=True):
            self._account(job, output)
            by_index[job.index] = output
        return by_index

    def _params(self, decoding: Decoding, max_tokens: int,
                schema: dict[str, Any] | None) -> Any:
        structured = None if schema is None else self._structured_outputs_params(json=schema)
        # top_p/top_k are pinned so that Decoding alone defines the sampler. The per-request
        # seed makes a sampled answer independent of what else is in the batch.
        return self._sampling_params(
            max_tokens=max_tokens,
            temperature=decoding.temperature,
            top_p=1.0,
            top_k=0,
            seed=decoding.seed,
            structured_outputs=structured,
        )

    def _account(self, job: _Job, output: Any) -> None:
        actual = len(output.prompt_token_ids or [])
        if actual and actual != job.prompt_tokens:
            # The pre-submission count guards the engine against over-long prompts; a mismatch
            # means it is off for this model, which matters near max_model_len.
            if not self._estimate_warned:
                log.warning(
                    "%s: estimated %d prompt tokens, vLLM counted %d; prompts near "
                    "max_model_len may be rejected by the engine",
                    self._model_name, job.prompt_tokens, actual,
                )
                self._estimate_warned = True
            job.prompt_tokens = actual

    def _answer(self, job: _Job, output: Any) -> RawAnswer:
        completion = output.outputs[0]
        # Tokens of the submission that gave the answer: the run's prefix-cache hit rate is over
        # answered prompts (a length retry's first, cut submission is not counted).
        counts: dict[str, Any] = {
            "new_tokens": len(completion.token_ids),
            "prompt_tokens": job.prompt_tokens,
            "cached_prompt_tokens": int(output.num_cached_tokens or 0),
            "max_tokens": job.max_tokens,
            "length_retries": job.length_retries,
        }
        reason = completion.finish_reason
        if reason not in _ANSWERED:
            # "error" is what vLLM reports when, e.g., the grammar fails to compile; "abort"
            # when the engine dropped the request.
            return RawAnswer(
                text=completion.text or None,
                error=JudgeUnavailableError(
                    f"vLLM ended the request with finish_reason={reason!r}"), **counts)
        return RawAnswer(text=completion.text, finish_reason=reason, **counts)

    def _messages(self, request: JudgeRequest, *, for_vllm: bool) -> list[dict[str, Any]]:
        """The chat of one request: vLLM's content parts, or the HF processor's for counting."""
        messages: list[dict[str, Any]] = []
        if self._system_prompt is not None:
            messages.append(
                {"role": "system", "content": [{"type": "text", "text": self._system_prompt}]}
            )
        content: list[dict[str, Any]] = []
        if request.image is not None:
            content.append(
                {"type": "image_pil", "image_pil": request.image} if for_vllm
                else {"type": "image"}
            )
        content.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": content})
        return messages

    def _check_schema_compiles(self) -> None:
        """Fail at load time, not on every request, when the grammar engine rejects the schema.

        vLLM reports a grammar that fails to compile as finish_reason "error" on each request
        that uses it. xgrammar 0.2.8 (vLLM 0.32's) fails this way on string patterns with a
        repetition bound above 128 (mlc-ai/xgrammar#647); `decoding_schema` splits its bounds for
        that reason, and this probe catches whatever else an engine rejects.
        The compiled grammar is cached by vLLM, so this one-token probe also warms it up.
        """
        probe = [[{"role": "user", "content": [{"type": "text", "text": "{}"}]}]]
        params = self._params(Decoding(max_new_tokens=1), 1, self._json_schema)
        (output,) = self._llm.chat(probe, [params], use_tqdm=False)
        reason = output.outputs[0].finish_reason
        if reason not in _ANSWERED:
            raise ValueError(
                f"vLLM's structured-output backend could not use the judge's JSON schema "
                f"(finish_reason={reason!r}); try judge.vllm.structured_outputs_backend=guidance"
            )
