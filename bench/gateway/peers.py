"""The gateways under test and how each is started to route one model to N upstream URLs.

Ours is `inferplane gateway` from this checkout's venv; the peers come from their own venvs,
made by bench/peers/setup_gateways.sh (`make bench-peers`) under ~/.cache/inferplane-bench. Each
builder returns a `bench.servers.ServerSpec` pinned to the gateway's core with `taskset`, or
raises `Unavailable` saying why it cannot run here.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.servers import ServerSpec

CACHE = Path.home() / ".cache" / "inferplane-bench"
LOGS = CACHE / "logs"
STAMP = ".inferplane-installed"
"""Written by bench/peers/setup_gateways.sh into each venv once its package works."""
MODEL = "stub"
TOKEN = "sk-inferplane-bench"
"""The clients' bearer token: litellm wants its master key to start with `sk-`."""


class Unavailable(Exception):
    """This gateway cannot be measured here; the message says why."""


@dataclass(frozen=True)
class Launch:
    """What every gateway is told: where to listen, where to route, where to keep files."""

    port: int
    upstreams: list[str]
    workdir: Path
    core: int
    venvs: Path = CACHE
    startup_timeout: float = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(who: str, argv: list[str], launch: Launch, health: str, **env: str) -> ServerSpec:
    """The server's spec, started on `launch.core` only, its log under the bench logs."""
    taskset = ["taskset", "-c", str(launch.core)]
    log = LOGS / f"gateway-overhead-{who}.log"
    environ = {**os.environ, **env}
    return ServerSpec(who, taskset + argv, environ, log, launch.startup_timeout, health)


def venv_bin(launch: Launch, venv: str, program: str) -> Path:
    root = launch.venvs / venv
    if not (root / STAMP).exists():
        raise Unavailable(f"no venv at {root} (run `make bench-peers`)")
    print(f"{(root / STAMP).read_text().strip()} from {root}", flush=True)
    return root / "bin" / program


# --- ours -----------------------------------------------------------------------------------


def ours(launch: Launch) -> ServerSpec:
    inferplane = Path(sys.executable).with_name("inferplane")
    check = subprocess.run(
        [str(inferplane), "gateway", "--help"], capture_output=True, text=True, timeout=60
    )
    if check.returncode != 0:
        lines = [line.strip("│╭╰─ ") for line in (check.stderr + check.stdout).splitlines()]
        said = [line for line in lines if any(c.isalnum() for c in line)] or ["no output"]
        raise Unavailable(f"`inferplane gateway --help` failed: {said[-1][:120]}")
    config = launch.workdir / "ours.yaml"
    config.write_text(yaml.safe_dump_all(ours_objects(launch.upstreams), sort_keys=False))
    argv = [str(inferplane), "gateway", "--host", "127.0.0.1", "--port", str(launch.port)]
    argv += ["--config", str(config), "--state-dir", str(launch.workdir / "ours-state")]
    return pinned("ours", [*argv, "--no-access-log"], launch, "/healthz")


def ours_objects(upstreams: list[str]) -> list[dict[str, object]]:
    """A Service over one Endpoint per upstream, and the bench's ApiKey."""
    meta = {"namespace": "default"}
    service = {"routes": [{"deployment": MODEL}], "strategy": "round-robin"}
    objects: list[dict[str, object]] = [
        {"kind": "Service", "metadata": {"name": MODEL, **meta}, "spec": service}
    ]
    for index, url in enumerate(upstreams):
        name = f"{MODEL}-{index}"
        endpoint = {"url": url, "deployment": MODEL, "replica": name}
        objects.append(
            {
                "kind": "Endpoint",
                "metadata": {"name": name, **meta},
                "spec": endpoint,
                "status": {"ready": True},
            }
        )
    key = {"tokenHash": hashlib.sha256(TOKEN.encode()).hexdigest()}
    objects.append({"kind": "ApiKey", "metadata": {"name": "bench", **meta}, "spec": key})
    return objects


# --- the Rust routers -----------------------------------------------------------------------


def sglang(who: str, policy: str) -> Callable[[Launch], ServerSpec]:
    def build(launch: Launch) -> ServerSpec:
        python = venv_bin(launch, "sglang-router-venv", "python")
        argv = [str(python), "-m", "sglang_router.launch_router", *router_args(launch, policy)]
        return pinned(who, [*argv, "--log-level", "warn"], launch, "/health")

    return build


def vllm_router(launch: Launch) -> ServerSpec:
    program = venv_bin(launch, "vllm-router-venv", "vllm-router")
    argv = [str(program), *router_args(launch, "round_robin"), "--log-level", "warning"]
    return pinned("vllm-router", argv, launch, "/health")


def router_args(launch: Launch, policy: str) -> list[str]:
    """The flags both routers share; each gets a Prometheus port of its own (two cannot
    share the default 29000)."""
    argv = ["--host", "127.0.0.1", "--port", str(launch.port), "--worker-urls", *launch.upstreams]
    return [*argv, "--policy", policy, "--prometheus-port", str(free_port())]


# --- litellm --------------------------------------------------------------------------------


def litellm(launch: Launch) -> ServerSpec:
    program = venv_bin(launch, "litellm-venv", "litellm")
    config = launch.workdir / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(launch.upstreams), sort_keys=False))
    argv = [str(program), "--config", str(config), "--host", "127.0.0.1"]
    argv += ["--port", str(launch.port), "--num_workers", "1", "--telemetry", "False"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    return pinned("litellm", argv, launch, "/health/liveliness", **env)


def litellm_config(upstreams: list[str]) -> dict[str, object]:
    """One model_list entry per upstream under the one model name; the bench token is the
    master key (no database: the key is checked against it alone)."""
    models = [
        {
            "model_name": MODEL,
            "litellm_params": {"model": f"openai/{MODEL}", "api_base": f"{url}/v1", "api_key": "x"},
        }
        for url in upstreams
    ]
    return {
        "model_list": models,
        "general_settings": {"master_key": TOKEN},
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }


GATEWAYS: dict[str, Callable[[Launch], ServerSpec]] = {
    "ours": ours,
    "sglang-rr": sglang("sglang-rr", "round_robin"),
    "sglang-cache": sglang("sglang-cache", "cache_aware"),
    "vllm-router": vllm_router,
    "litellm": litellm,
}
"""Every gateway by its target name (`direct` is no gateway: the stub itself)."""
