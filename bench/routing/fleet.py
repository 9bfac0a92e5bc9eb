"""The processes of the routing bench: reference-engine replicas of the demo model, and a
gateway in front of them — ours in config mode with one strategy, or sglang-router."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import servers
from bench.gateway import peers
from bench.routing.client import MODEL

LOGS = peers.LOGS
TOKEN = "sk-inferplane-routing-bench"
BLOCK_SIZE = 16
MAX_MODEL_LEN = 512
"""The demo model's context."""
INFERPLANE = Path(sys.executable).with_name("inferplane")


@dataclass(frozen=True)
class EngineSetup:
    replicas: int
    kv_blocks: int
    """KV-cache blocks per engine (of BLOCK_SIZE tokens): sized below what every group's
    system prompt needs, so where a prompt goes decides whether its prefix is cached."""
    threads: int = 1
    """Torch threads per engine: the replicas share the machine's cores."""


def demo_model() -> Path:
    """The demo model's folder, built once into the data dir (as `--model demo` does)."""
    from inferplane.cli.engine import resolve_model

    return resolve_model(Path("demo"))


def block_bytes(model: Path) -> int:
    """Bytes of one float32 KV-cache block of the model: keys and values of every layer."""
    config = json.loads((model / "config.json").read_text())
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", config["num_attention_heads"])
    return 2 * config["num_hidden_layers"] * kv_heads * head_dim * BLOCK_SIZE * 4


def engine_spec(model: Path, port: int, index: int, setup: EngineSetup) -> servers.ServerSpec:
    argv = [str(INFERPLANE), "engine", "--model", str(model), "--port", str(port)]
    argv += ["--served-model-name", MODEL, "--dtype", "float32", "--log-level", "warning"]
    argv += ["--kv-cache-memory", str(setup.kv_blocks * block_bytes(model))]
    argv += ["--block-size", str(BLOCK_SIZE), "--max-model-len", str(MAX_MODEL_LEN)]
    argv += ["--shutdown-grace", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": str(setup.threads)}
    return servers.ServerSpec(f"engine e{index}", argv, env, LOGS / f"routing-e{index}.log", 300)


@contextmanager
def engines(setup: EngineSetup) -> Iterator[list[str]]:
    """The replicas, started together, healthy; yields their URLs; stopped on exit."""
    model = demo_model()
    ports = [peers.free_port() for _ in range(setup.replicas)]
    specs = [engine_spec(model, port, i, setup) for i, port in enumerate(ports)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    LOGS.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for spec in specs:
            print(f"starting {spec.who}: {' '.join(spec.argv)}", flush=True)
            with spec.log.open("w") as log:
                started.append(
                    subprocess.Popen(
                        spec.argv,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=spec.env,
                        start_new_session=True,
                    )
                )
        for process, spec, url in zip(started, specs, urls, strict=True):
            servers.wait_healthy(process, url, spec)
        yield urls
    finally:
        for process, spec in zip(started, specs, strict=False):
            servers.stop(process, spec.who)


def ours_objects(strategy: str, urls: list[str]) -> list[dict[str, object]]:
    """A Service over one Endpoint per engine, and the bench's ApiKey."""
    ns = "default"
    service = {"routes": [{"deployment": MODEL}], "strategy": strategy}
    objects: list[dict[str, object]] = [
        {"kind": "Service", "metadata": {"name": MODEL, "namespace": ns}, "spec": service}
    ]
    for index, url in enumerate(urls):
        objects.append(
            {
                "kind": "Endpoint",
                "metadata": {"name": f"e{index}", "namespace": ns},
                "spec": {"url": url, "deployment": MODEL, "replica": f"e{index}"},
                "status": {"ready": True},
            }
        )
    key = {"tokenHash": hashlib.sha256(TOKEN.encode()).hexdigest()}
    objects.append({"kind": "ApiKey", "metadata": {"name": "bench", "namespace": ns}, "spec": key})
    return objects


def ours(strategy: str, urls: list[str], workdir: Path) -> list[tuple[servers.ServerSpec, str]]:
    """`inferplane gateway` in config mode, routing `demo` over `urls` by `strategy`, as the
    one (spec, URL) to start."""
    port = peers.free_port()
    config = workdir / f"{strategy}.yaml"
    config.write_text(yaml.safe_dump_all(ours_objects(strategy, urls), sort_keys=False))
    argv = [str(INFERPLANE), "gateway", "--port", str(port), "--config", str(config)]
    argv += ["--state-dir", str(workdir / f"{strategy}-state"), "--no-access-log"]
    argv += ["--log-level", "warning"]
    log = LOGS / f"routing-gateway-{strategy}.log"
    spec = servers.ServerSpec(f"gateway {strategy}", argv, dict(os.environ), log, 60, "/healthz")
    return [(spec, f"http://127.0.0.1:{port}")]


def sglang_cache_aware(urls: list[str], workdir: Path) -> list[tuple[servers.ServerSpec, str]]:
    """sglang-router's cache_aware policy over the engines, through the shim that drops its
    SGLang-only fields (shim.py), as (spec, URL) to start in order, the router last; raises
    `peers.Unavailable` where its venv (`make bench-peers`) is missing."""
    port, shim_ports = peers.free_port(), [peers.free_port() for _ in urls]
    shim_urls = [f"http://127.0.0.1:{p}" for p in shim_ports]
    launch = peers.Launch(port, shim_urls, workdir, core=0)
    python = peers.venv_bin(launch, "sglang-router-venv", "python")
    argv = [str(python), "-m", "sglang_router.launch_router"]
    argv += [*peers.router_args(launch, "cache_aware"), "--log-level", "warn"]
    log = LOGS / "routing-sglang-cache-aware.log"
    router = servers.ServerSpec("sglang cache_aware", argv, dict(os.environ), log, 60, "/health")
    shim = [sys.executable, str(Path(__file__).with_name("shim.py"))]
    shim += [f"--map={p}={u}" for p, u in zip(shim_ports, urls, strict=True)]
    hop = servers.ServerSpec("shim", shim, dict(os.environ), LOGS / "routing-shim.log", 30)
    return [(hop, shim_urls[0]), (router, f"http://127.0.0.1:{port}")]
