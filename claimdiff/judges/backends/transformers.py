"""A judge backend that runs a Hugging Face image-text-to-text model in-process.

One `judge()` call is one batched, left-padded `generate()`. When a JSON schema is given, decoding
is constrained by xgrammar's logits processor, one grammar per row (a request may bring its own
schema); grammars are compiled once per distinct schema, but the processor holds per-sequence
matcher state, so a fresh one is built for every `generate()` call.

torch, transformers and xgrammar are imported lazily so that the rest of claimdiff (and other
backends) work without them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from claimdiff.errors import ContextOverflowError, MissingExtraError
from claimdiff.judges.backends.base import Decoding, JudgeRequest, RawAnswer

if TYPE_CHECKING:
    import torch


# Compiled grammars kept (a few ms to compile one verification schema, far more for the judge's).
_MAX_GRAMMARS = 512


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], "transformers") from exc


class TransformersBackend:
    """Judge with a local or hub image-text-to-text model through `transformers.generate`.

    `device="auto"` means CUDA when available, else CPU (no accelerate/device_map sharding).
    `dtype` is a torch dtype name ("float32", "bfloat16", ...) or "auto" for the checkpoint's own.
    """

    def __init__(
        self,
        model: str,
        json_schema: dict[str, Any] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        trust_remote_code: bool = False,
        system_prompt: str | None = None,
    ) -> None:
        self._torch = _require("torch")
        transformers = _require("transformers")
        self._xgr = _require("xgrammar") if json_schema is not None else None
        if self._xgr is not None:
            # Imported here so a broken contrib module surfaces at construction, not mid-batch.
            self._xgr_hf = _require("xgrammar.contrib.hf")

        self._model_name = model
        self._system_prompt = system_prompt
        self._device = self._resolve_device(device)

        self._processor = transformers.AutoProcessor.from_pretrained(
            model, trust_remote_code=trust_remote_code
        )
        self._tokenizer = getattr(self._processor, "tokenizer", self._processor)
        # Decoder-only batching: padding must be on the left so every row's last prompt token
        # sits at the same position and generated tokens follow it directly.
        self._tokenizer.padding_side = "left"

        torch_dtype = dtype if dtype == "auto" else getattr(self._torch, dtype)
        self._model = transformers.AutoModelForImageTextToText.from_pretrained(
            model, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
        self._model.to(self._device).eval()
        text_config = getattr(self._model.config, "text_config", None) or self._model.config
        context = getattr(text_config, "max_position_embeddings", None)
        self._context: int | None = int(context) if context else None

        gen_config = self._model.generation_config
        self._eos_ids = _as_id_list(gen_config.eos_token_id) or _as_id_list(
            self._tokenizer.eos_token_id
        )
        if not self._eos_ids:
            raise ValueError(
                f"{model}: neither generation_config nor tokenizer defines an EOS token"
            )
        pad_id = gen_config.pad_token_id
        if pad_id is None:
            pad_id = self._tokenizer.pad_token_id
        self._pad_id = pad_id if pad_id is not None else self._eos_ids[0]

        self._compiled_grammar = None
        self._compiler = None
        self._grammars: dict[str, Any] = {}
        if self._xgr is not None and json_schema is not None:
            xgrammar = self._xgr
            # The bitmask must cover the model's logits, which can be wider than the tokenizer's
            # vocabulary (padded lm_head); the stop tokens must be the ones generate() stops on.
            vocab_size = self._model.get_output_embeddings().weight.shape[0]
            tokenizer_info = xgrammar.TokenizerInfo.from_huggingface(
                self._tokenizer, vocab_size=vocab_size, stop_token_ids=self._eos_ids
            )
            # The cache is off because xgrammar 0.2.8's cache hasher aborts with
            # "per_rule_fsm_hashes[ref_rule_id].has_value()" on string patterns with a repetition
            # bound above 128 (mlc-ai/xgrammar#647). decoding_schema() splits its own bounds,
            # other schemas may not; we compile once per schema, so the cache buys nothing here.
            self._compiler = xgrammar.GrammarCompiler(tokenizer_info, cache_enabled=False)
            self._compiled_grammar = self._grammar(json_schema)

    @property
    def model_id(self) -> str:
        return self._model_name

    def judge(self, requests: Sequence[JudgeRequest], decoding: Decoding) -> list[RawAnswer]:
        """One batched `generate`, except for prompts the context leaves too little room.

        A prompt that does not fit the context fails alone. One whose answer budget the context
        would cut (prompt + max_new_tokens > context) is generated on its own with what room it
        has: in the batch its length would shrink every row's budget (the budget of a left-padded
        batch is the context minus its longest prompt), making answers depend on batch-mates.
        """
        if not requests:
            return []
        answers: list[RawAnswer | None] = [None] * len(requests)
        everything = list(range(len(requests)))
        inputs = self._inputs(requests)
        fits, tight = [], []
        for i, n in enumerate(inputs["attention_mask"].sum(dim=1).tolist()):
            if self._context is None or n + decoding.max_new_tokens <= self._context:
                fits.append(i)
            elif n < self._context:
                tight.append(i)
            else:
                answers[i] = RawAnswer(
                    text=None, error=ContextOverflowError(
                        f"prompt of {n} tokens does not fit the model's context of "
                        f"{self._context} tokens"))
        for group in ([fits] if fits else []) + [[i] for i in tight]:
            batch = [requests[i] for i in group]
            group_inputs = inputs if group == everything else self._inputs(batch)
            for i, answer in zip(group, self._generate(group_inputs, decoding, batch),
                                 strict=True):
                answers[i] = answer
        return [answer for answer in answers if answer is not None]

    def _inputs(self, requests: Sequence[JudgeRequest]) -> Any:
        texts: list[str] = []
        images: list[Any] = []
        for request in requests:
            texts.append(
                self._processor.apply_chat_template(
                    self._messages(request), add_generation_prompt=True, tokenize=False
                )
            )
            if request.image is not None:
                images.append(request.image)

        # The chat template already wrote any BOS, so the processor must not add another one.
        inputs = self._processor(
            text=texts,
            images=images or None,
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(self._device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        return inputs

    def _generate(
        self, inputs: Any, decoding: Decoding, requests: Sequence[JudgeRequest]
    ) -> list[RawAnswer]:
        torch = self._torch
        logits_processors = []
        if self._compiled_grammar is not None:
            # one grammar per row, by the rule of `base.request_schema` (the backend's compiled
            # grammar reused, not recompiled from its schema)
            grammars = [self._compiled_grammar if r.json_schema is None
                        else self._grammar(r.json_schema) for r in requests]
            logits_processors.append(self._xgr_hf.LogitsProcessor(grammars))

        sampling: dict[str, Any]
        if decoding.temperature == 0:
            sampling = {"do_sample": False}
        else:
            # top_k/top_p are pinned because generate() would otherwise inherit the checkpoint's
            # defaults (some ship top_k=1), and Decoding alone must define the sampler.
            sampling = {
                "do_sample": True,
                "temperature": decoding.temperature,
                "top_k": 0,
                "top_p": 1.0,
            }

        prompt_len = inputs["input_ids"].shape[1]
        budget = decoding.max_new_tokens
        if self._context is not None:
            # positions past the context are ones the model never saw in training
            budget = min(budget, self._context - prompt_len)
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(decoding.seed)
            output = self._model.generate(
                **inputs,
                max_new_tokens=budget,
                eos_token_id=self._eos_ids,
                pad_token_id=self._pad_id,
                logits_processor=logits_processors,
                **sampling,
            )
        return [self._answer(row[prompt_len:], budget) for row in output]

    def _grammar(self, schema: dict[str, Any]) -> Any:
        """Compiled once per distinct schema (judge answers, verification answers, ...)."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            assert self._compiler is not None
            if len(self._grammars) >= _MAX_GRAMMARS:
                # verification schemas differ per claim set: keep the cache bounded
                self._grammars.pop(next(iter(self._grammars)))
            # Without any_whitespace=False a weak model can emit whitespace until
            # max_new_tokens; compact separators keep answers short and identical across backends.
            self._grammars[key] = self._compiler.compile_json_schema(
                schema, any_whitespace=False, separators=(",", ":"))
        return self._grammars[key]

    def _messages(self, request: JudgeRequest) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if self._system_prompt is not None:
            messages.append(
                {"role": "system", "content": [{"type": "text", "text": self._system_prompt}]}
            )
        content: list[dict[str, Any]] = []
        if request.image is not None:
            content.append({"type": "image", "image": request.image})
        content.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": content})
        return messages

    def _answer(self, new_tokens: torch.Tensor, budget: int) -> RawAnswer:
        ids = new_tokens.tolist()
        eos_positions = [i for i, token in enumerate(ids) if token in self._eos_ids]
        finish_reason: Literal["stop", "length"]
        if eos_positions:
            # Everything after the first EOS is padding for rows that finished early.
            ids = ids[: eos_positions[0]]
            finish_reason = "stop"
        else:
            finish_reason = "length"
        text = self._tokenizer.decode(ids, skip_special_tokens=True)
        return RawAnswer(text=text, finish_reason=finish_reason, new_tokens=len(ids),
                         max_tokens=budget)

    def _resolve_device(self, device: str) -> str:
        if device == "auto":
            return "cuda" if self._torch.cuda.is_available() else "cpu"
        return device

    def _rng_devices(self) -> list[int]:
        # fork_rng restores the global RNG afterwards, so seeding here does not leak into callers.
        model_device = self._model.device
        if model_device.type == "cuda":
            return [model_device.index or 0]
        return []


def _as_id_list(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return list(value)
