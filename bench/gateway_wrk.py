"""Gateway throughput as wrk measures it: requests/s at a fixed number of connections.

The same traffic direct to the upstream (the baseline) and through each gateway: small
non-streaming chat completions at `--low` and `--high` connections, and a `--big-kib` KiB
prompt at `--big` connections. The upstream is nginx answering a fixed completion (two
listening ports, one worker: far faster than any gateway). Each gateway runs pinned to
`--gateway-core`; nginx and wrk share `--client-core`. Every gateway is run with its own
defaults (routing round-robin over the two upstream URLs, access logs off where that is a
flag). `--tls` adds ours serving HTTPS (certificates made for the run with trustme) and prints
what TLS costs. Peers come from `make bench-peers`; one that is missing prints as unavailable.

    .venv/bin/python bench/gateway_wrk.py [--duration 10] [--repeat 3] [--tls]
        [--targets direct,ours,vllm-router,sglang-rr] [--json [FILE]]

Needs `wrk` and `nginx` (Debian: `apt-get install wrk nginx-light`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import servers
from bench.gateway import peers
from bench.jsonout import write_json

ANSWER = (
    '{"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"stub",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}'
)
NGINX = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    server {{
        {listens}
        location / {{
            default_type application/json;
            return 200 '{answer}';
        }}
        location = /v1/models {{
            default_type application/json;
            return 200 '{{"object":"list","data":[{{"id":"stub","object":"model"}}]}}';
        }}
    }}
}}
"""
SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.body = [[{body}]]
"""
PEERS = ("vllm-router", "sglang-rr")


@dataclass
class Point:
    target: str
    load: str
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps) if self.rps else 0.0


def body(kib: int) -> str:
    content = "hello " * max(1, (kib * 1024) // 6) if kib else "hello"
    return (
        '{"model":"stub","max_tokens":1,"messages":[{"role":"user","content":"' + content + '"}]}'
    )


@contextmanager
def nginx(ports: list[int], core: int, workdir: Path) -> Iterator[None]:
    listens = " ".join(f"listen 127.0.0.1:{p} reuseport backlog=4096;" for p in ports)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX.format(dir=workdir, listens=listens, answer=ANSWER))
    argv = ["taskset", "-c", str(core), "nginx", "-c", str(conf), "-p", str(workdir)]
    process = subprocess.Popen(argv, stderr=subprocess.STDOUT, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{ports[0]}/", timeout=1, trust_env=False)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def wrk(url: str, connections: int, seconds: float, core: int, script: Path) -> tuple[float, ...]:
    """(requests/s, p50 ms, p99 ms, non-2xx count) of one wrk run."""
    argv = ["taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    argv += ["--latency", "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    failures = int(bad.group(1)) if bad else 0
    if errors:
        failures += sum(int(n) for n in re.findall(r"\d+", errors.group(0)))
    return rps, _latency(out, "50%"), _latency(out, "99%"), failures


def _latency(out: str, label: str) -> float:
    found = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
    if not found:
        return float("nan")
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


@contextmanager
def target(name: str, launch: peers.Launch, tls: Path | None) -> Iterator[str]:
    """The base URL of `name` serving, stopped on exit."""
    if name == "direct":
        yield launch.upstreams[0]
        return
    spec = peers.GATEWAYS[name.removesuffix("-tls")](launch)
    scheme = "http"
    if tls is not None:
        spec.argv.extend(["--tls-cert", str(tls / "cert.pem"), "--tls-key", str(tls / "key.pem")])
        scheme = "https"
    url = f"{scheme}://127.0.0.1:{launch.port}"
    with _serving(spec, url, tls):
        yield url


@contextmanager
def _serving(spec: servers.ServerSpec, url: str, tls: Path | None) -> Iterator[None]:
    if tls is None:
        with servers.running(spec, url):
            yield
        return
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with spec.log.open("w") as log:
        process = subprocess.Popen(
            spec.argv, stdout=log, stderr=subprocess.STDOUT, env=spec.env, start_new_session=True
        )
    try:
        for _ in range(200):
            try:
                if httpx.get(url + spec.health, verify=str(tls / "ca.pem"), timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield
    finally:
        servers.stop(process, spec.who)


def certificates(workdir: Path) -> Path:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    cert.private_key_pem.write_to_path(str(workdir / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(workdir / "cert.pem"))
    return workdir


def measure(args: argparse.Namespace, workdir: Path) -> list[Point]:
    loads = [("small", args.low, 0), ("small", args.high, 0), ("big", args.big, args.big_kib)]
    scripts = {}
    for _, _, kib in loads:
        script = workdir / f"post-{kib}.lua"
        script.write_text(SCRIPT.format(token=peers.TOKEN, body=body(kib)))
        scripts[kib] = script
    ports = [peers.free_port() for _ in range(2)]
    upstreams = [f"http://127.0.0.1:{p}" for p in ports]
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.tls:
        names.append("ours-tls")
    tls = certificates(workdir) if args.tls else None
    points: list[Point] = []
    with nginx(ports, args.client_core, workdir):
        for name in names:
            launch = peers.Launch(peers.free_port(), upstreams, workdir, args.gateway_core)
            try:
                with target(name, launch, tls if name.endswith("-tls") else None) as url:
                    points += _run_loads(name, url, loads, scripts, args)
            except (peers.Unavailable, RuntimeError) as exc:
                print(f"{name}: unavailable: {exc}", flush=True)
    return points


def _run_loads(
    name: str,
    url: str,
    loads: list[tuple[str, int, int]],
    scripts: dict[int, Path],
    args: argparse.Namespace,
) -> list[Point]:
    found = []
    endpoint = f"{url}/v1/chat/completions"
    wrk(endpoint, args.low, 2, args.client_core, scripts[0])  # warm up
    for kind, connections, kib in loads:
        point = Point(name, f"{kind} x{connections}" + (f" {kib} KiB" if kib else ""))
        for _ in range(args.repeat):
            rps, p50, p99, bad = wrk(
                endpoint, connections, args.duration, args.client_core, scripts[kib]
            )
            point.rps.append(rps)
            point.p50_ms.append(p50)
            point.p99_ms.append(p99)
            point.errors += int(bad)
        print(
            f"{name:12} {point.load:18} {point.median_rps:9.0f} rps  runs {point.rps}", flush=True
        )
        found.append(point)
    return found


def report(points: list[Point]) -> None:
    by = {(p.target, p.load): p for p in points}
    loads = list(dict.fromkeys(p.load for p in points))
    targets = list(dict.fromkeys(p.target for p in points))
    print("\nrequests/s (median of runs; min-max) and p99 ms; ratio = ours / peer")
    print(f"{'load':18} " + " ".join(f"{t:>24}" for t in targets))
    for load in loads:
        cells = []
        for t in targets:
            p = by.get((t, load))
            if p is None:
                cells.append(f"{'-':>24}")
                continue
            spread = f"{min(p.rps):.0f}-{max(p.rps):.0f}"
            flag = " ERR" if p.errors else ""
            cells.append(
                f"{p.median_rps:7.0f} ({spread}) {statistics.median(p.p99_ms):4.1f}{flag}".rjust(24)
            )
        print(f"{load:18} " + " ".join(cells))
    for load in loads:
        ours = by.get(("ours", load))
        if ours is None:
            continue
        ratios = []
        for peer in PEERS:
            other = by.get((peer, load))
            if other and other.median_rps:
                ratios.append(f"ours/{peer} {ours.median_rps / other.median_rps:.2f}x")
        tls = by.get(("ours-tls", load))
        if tls and ours.median_rps:
            ratios.append(f"TLS costs {100 * (1 - tls.median_rps / ours.median_rps):.1f} %")
        print(f"{load:18} " + ", ".join(ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="direct,ours,vllm-router,sglang-rr")
    parser.add_argument("--duration", type=float, default=10.0, help="s per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per point")
    parser.add_argument("--low", type=int, default=8, help="connections")
    parser.add_argument("--high", type=int, default=64, help="connections")
    parser.add_argument("--big", type=int, default=8, help="connections for the big prompt")
    parser.add_argument("--big-kib", type=int, default=216, help="KiB of the big prompt")
    parser.add_argument("--tls", action="store_true", help="also ours over HTTPS")
    parser.add_argument("--gateway-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--json", nargs="?", const="-", help="write JSON to FILE (- stdout)")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install wrk nginx-light util-linux)")
    with tempfile.TemporaryDirectory(prefix="gateway-wrk-") as tmp:
        points = measure(args, Path(tmp))
    report(points)
    if args.json:
        write_json(args.json, {"points": [asdict(p) for p in points], "args": vars(args)})


if __name__ == "__main__":
    main()
