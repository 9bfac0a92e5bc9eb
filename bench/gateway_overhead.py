"""What an inference gateway adds: the same traffic direct to an upstream and through gateways.

Targets: `direct` (the upstream itself, the baseline), `ours` (`inferplane gateway`), and the
peers from their own pinned venvs (`make bench-peers`): `sglang-rr` and `sglang-cache`
(sglang-router 0.3.2, round_robin and cache_aware), `vllm-router` (0.1.17, round_robin) and
`litellm` (litellm[proxy] 1.99.4). One gateway at a time routes model `stub` over `--upstreams`
upstream URLs, all served by one stub process (bench/gateway/stub.py: uvloop + httptools, far
faster than any gateway). The gateway runs pinned to `--gateway-core`; this process (the load
generator, bench/gateway/loadgen.py) and the stub share `--client-core`. A gateway that cannot
be installed or started is printed as unavailable; the run goes on.

Measured per target on the same traffic (bench/gateway/phases.py): added latency p50/p99 over
direct for small chat completions at `--low` and `--high` requests in flight (closed loop); the
highest open-loop Poisson rate sustained with p99 within `--slo-ms` (latency from the intended
send time, so queueing shows; direct's figure is the load generator's own ceiling); the gateway's
CPU (its process group's utime + stime from /proc) per request at `--high` and per SSE event at
`--streams` concurrent streams of `--chunks` events `--chunk-delay` s apart; added inter-event
gap p50/p99 of those streams; added p50/p99 with a `--big-kib` KiB prompt at `--big` in flight.
Gateway logs go to ~/.cache/inferplane-bench/logs.

`--tls` adds `ours-tls`: ours serving HTTPS with a certificate made for the run (by the code of
`inferplane certs`), the load generator speaking TLS 1.3 to it (on the client core, so the
client's own encryption is part of that core's load) while the upstream stays plain HTTP; after
the table come plain and TLS side by side at the same loads, and what TLS costs.

    .venv/bin/python bench/gateway_overhead.py [--quick] [--targets direct,ours,...] [--tls]
        [--duration 5] [--sweep-duration 5] [--json [FILE]]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import ipaddress
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import servers
from bench.gateway import peers, phases, report
from bench.jsonout import write_json

TARGETS = [report.DIRECT, *peers.GATEWAYS]
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TlsFiles:
    """The run's certificate and key for ours-tls, and the CA its clients trust."""

    cert: Path
    key: Path
    ca: Path

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)


def certificates(workdir: Path) -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1, as `inferplane certs` makes them."""
    from inferplane.cli import certs

    now = datetime.datetime.now(datetime.UTC)
    authority = certs.new_authority("gateway bench CA", days=1, now=now)
    leaf = certs.Leaf("127.0.0.1", ips=(ipaddress.ip_address("127.0.0.1"),), days=1)
    key, cert = certs.issue(authority, leaf, now=now)
    ca_path, _ = certs.write_pair(workdir, "ca", authority.key, authority.cert, force=True)
    cert_path, key_path = certs.write_pair(workdir, "server", key, cert, force=True)
    return TlsFiles(cert_path, key_path, ca_path)


def gateway_spec(target: str, launch: peers.Launch, tls: TlsFiles | None) -> servers.ServerSpec:
    """How `target` starts: ours-tls is ours with --tls-cert/--tls-key, checked over HTTPS."""
    if target != report.OURS_TLS:
        return peers.GATEWAYS[target](launch)
    assert tls is not None
    spec = peers.ours(launch)
    argv = [*spec.argv, "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    log = spec.log.with_name(f"gateway-overhead-{target}.log")
    return dataclasses.replace(spec, who=target, argv=argv, log=log, verify=tls.client())


@dataclass(frozen=True)
class Setup:
    """Where things run: the upstream stub's ports and shape, and the two cores."""

    upstreams: int
    chunks: int
    chunk_delay: float
    gateway_core: int
    client_core: int

    @property
    def cpu_note(self) -> str:
        return f"gateway on core {self.gateway_core}, client + stub on core {self.client_core}"


@dataclass(frozen=True)
class Upstreams:
    """The stub's URLs (one per port) and its process (group) id."""

    urls: list[str]
    pid: int


@contextmanager
def stub(setup: Setup) -> Iterator[Upstreams]:
    """The stub process on the client core."""
    ports = [peers.free_port() for _ in range(setup.upstreams)]
    argv = ["taskset", "-c", str(setup.client_core), sys.executable, "-m", "bench.gateway.stub"]
    argv += ["--ports", ",".join(map(str, ports)), "--chunks", str(setup.chunks)]
    argv += ["--chunk-delay", str(setup.chunk_delay)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    log = peers.LOGS / "gateway-overhead-stub.log"
    spec = servers.ServerSpec("stub", argv, dict(os.environ), log, 30.0, "/health")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
        )
        try:
            for url in urls:
                servers.wait_healthy(process, url, spec)
            yield Upstreams(urls, process.pid)
        finally:
            servers.stop(process, "stub")


def measure_target(
    target: str,
    upstreams: Upstreams,
    plan: phases.Plan,
    setup: Setup,
    workdir: Path,
    tls: TlsFiles | None = None,
) -> report.Result:
    print(f"\n== {target}", flush=True)
    if target == report.DIRECT:
        return report.Result(target, drive(upstreams.urls[0], plan, [upstreams.pid]))
    launch = peers.Launch(peers.free_port(), upstreams.urls, workdir, setup.gateway_core)
    try:
        spec = gateway_spec(target, launch, tls)
    except (peers.Unavailable, OSError, subprocess.SubprocessError) as exc:
        print(f"{target} unavailable: {exc}", flush=True)
        return report.Result(target, unavailable=str(exc))
    over_tls = tls.client() if target == report.OURS_TLS and tls is not None else None
    url = f"{'https' if over_tls else 'http'}://127.0.0.1:{launch.port}"
    try:
        with servers.running(spec, url) as process:
            probe(url, over_tls or True)
            figures = drive(url, plan, [upstreams.pid, process.pid], over_tls)
            return report.Result(target, figures)
    except (RuntimeError, httpx.HTTPError) as exc:
        why = str(exc).splitlines()[0][:160]
        print(f"{target} unavailable: {exc}\n  its log: {spec.log}", flush=True)
        return report.Result(target, unavailable=f"{why} (log: {spec.log})")


def probe(url: str, verify: ssl.SSLContext | bool = True) -> None:
    """One chat completion through the gateway before the load: fail early and plainly."""
    body = {"model": peers.MODEL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {peers.TOKEN}"}
    answer = httpx.post(
        f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10, verify=verify
    )
    if answer.status_code != 200:
        raise RuntimeError(f"a first request answered HTTP {answer.status_code}: {answer.text}")


def drive(
    url: str, plan: phases.Plan, pgids: list[int], tls: ssl.SSLContext | None = None
) -> phases.Figures:
    """Run the plan against `url` (over TLS with `tls`); `pgids`: the stub's process group,
    then the gateway's."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    address = (host, int(port))
    calls = phases.Calls.build(address, plan, peers.TOKEN, peers.MODEL)
    gateway = pgids[1] if len(pgids) > 1 else None
    cpu = (lambda: servers.group_cpu_seconds(gateway)) if gateway is not None else None
    start = (time.monotonic(), servers.machine_busy_seconds(), bench_seconds(pgids))
    figures = uvloop.run(phases.measure(address, plan, calls, cpu, tls))
    wall = time.monotonic() - start[0]
    others = servers.machine_busy_seconds() - start[1] - (bench_seconds(pgids) - start[2])
    figures.other_cores = max(others / wall, 0.0)
    return figures


def bench_seconds(pgids: list[int]) -> float:
    """CPU seconds used by this process (the client) and by the given process groups."""
    return time.process_time() + sum(servers.group_cpu_seconds(pgid) for pgid in pgids)


def raise_open_files() -> None:
    """Up to 2 x 1,024 client and upstream connections: lift the soft limit (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(wanted, 65536)), hard))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="a few seconds per point")
    parser.add_argument("--duration", type=float, help="s per closed-loop point (5; quick 2)")
    parser.add_argument("--sweep-duration", type=float, help="s per rate (5; quick 1.5)")
    parser.add_argument("--low", type=int, default=8, help="requests in flight")
    parser.add_argument("--high", type=int, default=64, help="requests in flight")
    parser.add_argument("--streams", type=int, default=256, help="concurrent streams")
    parser.add_argument("--big", type=int, default=20, help="big-prompt requests in flight")
    parser.add_argument("--big-kib", type=int, default=216, help="KiB of the big prompt")
    parser.add_argument("--chunks", type=int, default=16, help="events per stream")
    parser.add_argument("--chunk-delay", type=float, default=0.05, help="s between events")
    parser.add_argument("--slo-ms", type=float, default=50.0, help="p99 of a sustained rate")
    parser.add_argument("--upstreams", type=int, default=2, help="upstream URLs per gateway")
    parser.add_argument("--gateway-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tls", action="store_true", help="also ours serving HTTPS (target ours-tls)"
    )
    parser.add_argument("--json", nargs="?", const="-", help="write JSON to FILE (- stdout)")
    args = parser.parse_args()
    unknown = set(args.targets.split(",")) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; pick from {','.join(TARGETS)}")
    return args


def plan_from(args: argparse.Namespace) -> phases.Plan:
    quick = args.quick
    return phases.Plan(
        duration=args.duration or (2.0 if quick else 5.0),
        sweep_duration=args.sweep_duration or (1.5 if quick else 5.0),
        warmup=0.5 if quick else 1.0,
        low=args.low,
        high=args.high,
        big=args.big,
        big_kib=args.big_kib,
        streams=args.streams,
        slo_ms=args.slo_ms,
        bisect=2 if quick else 3,
        pause=0.3 if quick else 0.5,
        seed=args.seed,
    )


def main() -> None:
    args = parse_args()
    plan, targets = plan_from(args), args.targets.split(",")
    targets += [report.OURS_TLS] if args.tls else []
    setup = Setup(
        args.upstreams, args.chunks, args.chunk_delay, args.gateway_core, args.client_core
    )
    os.sched_setaffinity(0, {setup.client_core})
    raise_open_files()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"command: {' '.join(sys.argv)}\ncores: {os.cpu_count()} ({setup.cpu_note}); load {load}")
    print(f"plan: {plan}", flush=True)
    started = time.monotonic()
    with stub(setup) as upstreams, tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        tls = certificates(Path(tmp)) if args.tls else None
        results = [measure_target(t, upstreams, plan, setup, Path(tmp), tls) for t in targets]
    text, data = report.table(results, low=plan.low, high=plan.high, kib=plan.big_kib)
    print(f"\n{legend(plan, setup)}\n{text}")
    tls_text, data["tls"] = report.tls_table(results, plan)
    if tls_text:
        print(f"\n{tls_text}")
    for line in report.failures(results):
        print(f"note: {line}")
    print(f"({time.monotonic() - started:.0f} s in all)")
    if args.json:
        write_json(args.json, {"command": sys.argv, "plan": vars(plan), "targets": data})


def legend(plan: phases.Plan, setup: Setup) -> str:
    return (
        f"latencies in ms: direct's absolute, a gateway's added over direct; max RPS: highest "
        f"Poisson rate with p99 <= {plan.slo_ms:g} ms and <= {plan.max_failures:.1%} failed "
        f"(direct's is the client's own ceiling); µs/req, µs/chunk: gateway CPU per request "
        f"at {plan.high} in flight and per SSE event at {plan.streams} streams; ITL: gaps between "
        f"a stream's events ({setup.chunks} events {setup.chunk_delay * 1000:g} ms apart at the "
        f"upstream); other: cores busy with work outside the bench meanwhile (noise); "
        f"{setup.cpu_note}"
    )


if __name__ == "__main__":
    main()
