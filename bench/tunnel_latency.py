"""What each routing tier and the tunnel add to a request's latency, in one run.

Starts on loopback a stub engine (tests/support/upstream_stub.py: answers at once, streams
--chunks chunks), a global gateway accepting tunnels (--tunnel-port) and a plane edge
(`gateway --plane plane-x --tunnel-to`), then sends the same requests, one at a time over a
keep-alive connection, four ways:

1. the engine directly (the floor);
2. the plane edge, routing to its engine (the plane-local tier);
3. the global gateway, dialling the engine over TCP (a Service whose Endpoint names no plane);
4. the global gateway through the plane's tunnel (the same engine, its Endpoint in plane-x).

Prints per way the p50 / p90 of a whole chat completion and of the first streamed chunk, and
what the tunnel adds over the direct route (4 minus 3) and each tier over the engine.

    .venv/bin/python bench/tunnel_latency.py [--requests 400] [--chunks 16]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.control import free_port

from bench import servers

KEY = "sk-bench-client"
EDGE = "sk-bench-edge-plane-x"
BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


@dataclass(frozen=True)
class Way:
    name: str
    url: str
    model: str
    auth: bool = True


@dataclass(frozen=True)
class Figures:
    way: Way
    whole_ms: list[float]
    first_chunk_ms: list[float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per way and kind (400)")
    parser.add_argument("--chunks", type=int, default=16, help="chunks the stub streams (16)")
    args = parser.parse_args()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"command: {' '.join(sys.argv)}\ncores: {os.cpu_count()}; load average {load}")
    with tempfile.TemporaryDirectory(prefix="tunnel-bench-") as tmp, ExitStack() as stack:
        ways = _start(Path(tmp), args.chunks, stack)
        results = [_measure(way, args.requests) for way in ways]
    _report(results)


def _start(work: Path, chunks: int, stack: ExitStack) -> list[Way]:
    stub_port, global_port, edge_port, tunnel_port = (free_port() for _ in range(4))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    python = sys.executable
    stub = f"http://127.0.0.1:{stub_port}"
    stack.enter_context(servers.running(servers.ServerSpec(
        "stub engine", [python, "-m", "tests.support.upstream_stub", "--port", str(stub_port),
                        "--chunks", str(chunks)],
        env, work / "stub.log", 30, health="/stats"), stub))  # fmt: skip
    config = work / "objects.yaml"
    config.write_text(yaml.safe_dump_all(_objects(stub)))
    common = ["--config", str(config), "--no-access-log", "--log-level", "warning"]
    gateway = [python, "-m", "inferplane", "gateway"]
    stack.enter_context(
        servers.running(
            servers.ServerSpec(
                "global gateway",
                [
                    *gateway,
                    "--port",
                    str(global_port),
                    "--tunnel-port",
                    str(tunnel_port),
                    "--state-dir",
                    str(work / "g"),
                    *common,
                ],
                env,
                work / "global.log",
                30,
                health="/healthz",
            ),
            f"http://127.0.0.1:{global_port}",
        )
    )
    stack.enter_context(
        servers.running(
            servers.ServerSpec(
                "plane edge",
                [
                    *gateway,
                    "--port",
                    str(edge_port),
                    "--plane",
                    "plane-x",
                    "--tunnel-to",
                    f"ws://127.0.0.1:{tunnel_port}",
                    "--token",
                    EDGE,
                    "--state-dir",
                    str(work / "e"),
                    *common,
                ],
                env,
                work / "edge.log",
                30,
                health="/healthz",
            ),
            f"http://127.0.0.1:{edge_port}",
        )
    )
    _wait_for_tunnel(f"http://127.0.0.1:{global_port}")
    return [
        Way("engine directly", stub, "chat", auth=False),
        Way("plane edge → engine", f"http://127.0.0.1:{edge_port}", "chat"),
        Way("global gateway → engine (TCP)", f"http://127.0.0.1:{global_port}", "direct"),
        Way("global gateway → tunnel → engine", f"http://127.0.0.1:{global_port}", "chat"),
    ]


def _objects(stub: str) -> list[dict[str, Any]]:
    def key(name: str, token: str, namespace: str, **spec: Any) -> dict[str, Any]:
        digest = hashlib.sha256(token.encode()).hexdigest()
        return {"kind": "ApiKey", "metadata": {"name": name, "namespace": namespace},
                "spec": {"tokenHash": digest, **spec}}  # fmt: skip

    def pair(name: str, **endpoint: Any) -> list[dict[str, Any]]:
        return [
            {"kind": "Service", "metadata": {"name": name, "namespace": "default"},
             "spec": {"routes": [{"deployment": name}]}},
            {"kind": "Endpoint", "metadata": {"name": f"{name}-0", "namespace": "default"},
             "spec": {"url": stub, "deployment": name, "replica": f"{name}-0", **endpoint},
             "status": {"ready": True}},
        ]  # fmt: skip

    return [
        *pair("chat", cluster="plane-x"),
        *pair("direct"),
        key("client", KEY, "default"),
        key("edge", EDGE, "inferplane-system", role="gateway", cluster="plane-x"),
        key("ops", "sk-bench-ops", "inferplane-system", role="viewer"),
    ]


def _wait_for_tunnel(url: str) -> None:
    deadline = time.monotonic() + 30
    headers = {"Authorization": "Bearer sk-bench-ops"}
    while time.monotonic() < deadline:
        page = httpx.get(f"{url}/metrics", headers=headers).text
        if 'inferplane_gateway_tunnels{cluster="plane-x"} 1.0' in page:
            return
        time.sleep(0.1)
    raise SystemExit("the edge's tunnel never came up")


def _measure(way: Way, requests: int) -> Figures:
    headers = {"Authorization": f"Bearer {KEY}"} if way.auth else {}
    body = {**BODY, "model": way.model}
    whole, first = [], []
    with httpx.Client(base_url=way.url, headers=headers, timeout=30) as client:
        for i in range(requests + 20):  # the first 20 warm the connections and caches
            start = time.perf_counter()
            client.post("/v1/chat/completions", json=body).raise_for_status()
            took = time.perf_counter() - start
            start = time.perf_counter()
            with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
                chunks = r.iter_raw()
                next(chunks)
                arrived = time.perf_counter() - start
                for _ in chunks:
                    pass
            if i >= 20:
                whole.append(took * 1000)
                first.append(arrived * 1000)
    print(f"  {way.name}: {requests} + {requests} requests", flush=True)
    return Figures(way, whole, first)


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def _report(results: list[Figures]) -> None:
    print("\n| way | whole p50 ms | whole p90 ms | first chunk p50 ms | first chunk p90 ms |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r.way.name} | {_pct(r.whole_ms, 50):.2f} | {_pct(r.whole_ms, 90):.2f} | "
              f"{_pct(r.first_chunk_ms, 50):.2f} | {_pct(r.first_chunk_ms, 90):.2f} |")  # fmt: skip
    floor, edge, direct, tunnel = results
    print("\nadded at the median (whole completion / first chunk):")
    for label, a, b in (
        ("plane edge over the engine", edge, floor),
        ("global gateway (TCP) over the engine", direct, floor),
        ("the tunnel over the global gateway's TCP route", tunnel, direct),
    ):
        whole = _pct(a.whole_ms, 50) - _pct(b.whole_ms, 50)
        first = _pct(a.first_chunk_ms, 50) - _pct(b.first_chunk_ms, 50)
        ratio = _pct(a.whole_ms, 50) / _pct(b.whole_ms, 50)
        print(f"  {label}: {whole:+.2f} ms / {first:+.2f} ms ({ratio:.2f}× whole)")


if __name__ == "__main__":
    main()
