#!/usr/bin/env bash
# Make the virtual environments of the gateways bench/gateway_overhead.py measures ours against:
# sglang-router, vllm-router and the litellm proxy, each pinned exactly and each in its own venv
# outside the checkout. Made once: a stamp file in each venv names what was installed, and a
# second run with the stamps in place does nothing. A peer that fails to install is reported and
# skipped (the bench then prints it as unavailable); the others still get made.
#
#   bench/peers/setup_gateways.sh [DIR]     (default ~/.cache/inferplane-bench)
#
# Environment: PYTHON (python3), SGLANG_ROUTER_PACKAGE (sglang-router==0.3.2),
# VLLM_ROUTER_PACKAGE (vllm-router==0.1.17), LITELLM_PACKAGE (litellm[proxy]==1.99.4).
# Never let litellm's version float: pin it here, whatever a newer release promises.
set -uo pipefail

DIR="${1:-$HOME/.cache/inferplane-bench}"
PYTHON="${PYTHON:-python3}"

say() { echo "[setup-gateways $(date +%H:%M:%S)] $*"; }

# setup VENV PACKAGE CHECK: install PACKAGE into VENV and run the shell command CHECK with the
# venv's bin/ first on PATH; stamp the venv once CHECK passes.
setup() {
    local venv="$1" package="$2" check="$3" stamp="$1/.inferplane-installed"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$package" ]; then
        say "$package is already set up in $venv (remove $stamp to redo); nothing to do"
        return 0
    fi
    if [ ! -x "$venv/bin/python" ]; then
        say "creating the virtual environment $venv with $PYTHON"
        mkdir -p "$(dirname "$venv")"
        "$PYTHON" -m venv "$venv" || return 1
    fi
    say "installing $package into $venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
        --quiet "$package" || return 1
    say "checking $package: $check"
    PATH="$venv/bin:$PATH" bash -c "$check" >/dev/null || return 1
    echo "$package" >"$stamp"
    say "$package is ready in $venv"
}

failed=()
setup "$DIR/sglang-router-venv" "${SGLANG_ROUTER_PACKAGE:-sglang-router==0.3.2}" \
    "python -m sglang_router.launch_router --help" || failed+=(sglang-router)
setup "$DIR/vllm-router-venv" "${VLLM_ROUTER_PACKAGE:-vllm-router==0.1.17}" \
    "vllm-router --help" || failed+=(vllm-router)
setup "$DIR/litellm-venv" "${LITELLM_PACKAGE:-litellm[proxy]==1.99.4}" \
    "litellm --help" || failed+=(litellm)

if [ ${#failed[@]} -gt 0 ]; then
    say "not set up: ${failed[*]} (bench/gateway_overhead.py reports them as unavailable)"
else
    say "done; run the gateway bench with"
fi
say "  .venv/bin/python bench/gateway_overhead.py --quick"
