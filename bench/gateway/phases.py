"""The measurement plan, run the same way against every target (the stub itself or a gateway).

In order: a warm-up; closed loops of small chat completions at `low` and `high` concurrency (the
second also gives the gateway's CPU per request); `big` concurrent requests with a `big_kib` KiB
prompt; `streams` concurrent streams (inter-event gaps, and CPU per event); then the open-loop
rate sweep for the highest Poisson rate the target sustains: p99 within `slo_ms` and at most
`max_failures` of requests failed or unfinished. The sweep starts at a quarter of the closed-loop
throughput at `high`, doubles until a rate is not sustained, then halves the gap `bisect` times.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.gateway import loadgen

CpuClock = Callable[[], float]
"""CPU seconds the gateway's processes have used so far."""


@dataclass(frozen=True)
class Plan:
    duration: float = 5.0
    """Seconds of each closed-loop point."""
    sweep_duration: float = 5.0
    """Seconds of each open-loop rate of the sweep."""
    warmup: float = 1.0
    low: int = 8
    high: int = 64
    big: int = 20
    big_kib: int = 216
    streams: int = 256
    slo_ms: float = 50.0
    max_failures: float = 0.001
    bisect: int = 3
    min_rate: float = 5.0
    max_rate: float = 200_000.0
    pause: float = 0.5
    """Seconds between two runs at least; more while the gateway still works off the last."""
    settle_limit: float = 20.0
    """The most seconds to wait for the gateway to go idle between two runs."""
    seed: int = 0


@dataclass(frozen=True)
class Calls:
    """The three requests of the plan, serialised for one target's address."""

    chat: loadgen.Call
    big: loadgen.Call
    stream: loadgen.Call

    @classmethod
    def build(cls, address: tuple[str, int], plan: Plan, token: str, model: str) -> Calls:
        def call(content: str, **extra: object) -> loadgen.Call:
            body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
            return loadgen.build_call(address, "/v1/chat/completions", body, token)

        big = ("lorem ipsum " * (plan.big_kib * 1024 // 12 + 1))[: plan.big_kib * 1024]
        stream = call("count to sixteen", max_tokens=16, stream=True)
        return cls(call("say hi", max_tokens=8), call(big, max_tokens=8), stream)


@dataclass(frozen=True)
class Latency:
    """Percentiles in milliseconds over the successful requests (or stream gaps) of a run."""

    p50: float
    p99: float
    ok: int
    failed: int
    errors: list[str]

    @classmethod
    def of(cls, values: Sequence[float], tally: loadgen.Tally) -> Latency:
        ms = [v * 1000 for v in values]
        failed = tally.failed
        return cls(percentile(ms, 50), percentile(ms, 99), len(tally.ok), failed, tally.errors())


@dataclass(frozen=True)
class Point:
    """One open-loop rate of the sweep."""

    rate: float
    achieved: float
    p50: float
    p99: float
    failed: int
    sustained: bool


@dataclass
class Figures:
    """Everything measured on one target."""

    low: Latency | None = None
    high: Latency | None = None
    big: Latency | None = None
    gaps: Latency | None = None
    sweep: list[Point] = field(default_factory=list)
    cpu_us_request: float | None = None
    cpu_us_event: float | None = None
    other_cores: float | None = None
    """Cores busy with work of neither the bench nor the gateway meanwhile (the machine is
    shared: the more, the noisier this target's figures)."""

    @property
    def max_rps(self) -> float:
        return max((p.rate for p in self.sweep if p.sustained), default=0.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


def gaps(outcome: loadgen.Outcome) -> list[float]:
    """Seconds between a stream's events that came in separate reads."""
    times = sorted(set(outcome.events))
    return [b - a for a, b in itertools.pairwise(times)]


async def measure(
    address: tuple[str, int],
    plan: Plan,
    calls: Calls,
    cpu: CpuClock | None,
    tls: ssl.SSLContext | None = None,
) -> Figures:
    """The plan against `address`, over TLS with `tls` (connections are opened before each
    run's clock starts, so handshakes are not in the latencies)."""
    figures = Figures()
    for call in (calls.chat, calls.stream):
        await loadgen.closed_loop(
            address, call, concurrency=plan.low, duration=plan.warmup, tls=tls
        )
    _, tally = await closed(None, address, calls.chat, plan.low, plan.duration, tls)
    figures.low = Latency.of([o.latency for o in tally.ok], tally)
    used, tally = await closed(cpu, address, calls.chat, plan.high, plan.duration, tls)
    figures.high = Latency.of([o.latency for o in tally.ok], tally)
    figures.cpu_us_request = per(used, len(tally.ok))
    _, tally = await closed(None, address, calls.big, plan.big, plan.duration, tls)
    figures.big = Latency.of([o.latency for o in tally.ok], tally)
    used, tally = await closed(cpu, address, calls.stream, plan.streams, plan.duration, tls)
    figures.gaps = Latency.of([g for o in tally.ok for g in gaps(o)], tally)
    figures.cpu_us_event = per(used, sum(len(o.events) for o in tally.outcomes))
    closed_rps = figures.high.ok / plan.duration
    figures.sweep = await sweep(address, calls.chat, plan, closed_rps, cpu, tls)
    return figures


async def closed(
    cpu: CpuClock | None, address: tuple[str, int], call: loadgen.Call, in_flight: int,
    duration: float, tls: ssl.SSLContext | None = None,
) -> tuple[float | None, loadgen.Tally]:  # fmt: skip
    """A closed-loop run, and the gateway's CPU seconds meanwhile (None without a clock)."""
    kib = len(call.raw) // 1024
    what = "streams" if call.stream else f"{kib} KiB requests" if kib else "small requests"
    print(f"    closed loop: {in_flight} {what} in flight, {duration:g} s", flush=True)
    before = cpu() if cpu else 0.0
    tally = await loadgen.closed_loop(
        address, call, concurrency=in_flight, duration=duration, tls=tls
    )
    return (cpu() - before if cpu else None), tally


def per(used: float | None, count: int) -> float | None:
    """Microseconds per item, where both are known."""
    return used * 1e6 / count if used is not None and count else None


async def sweep(
    address: tuple[str, int], call: loadgen.Call, plan: Plan, closed_rps: float,
    cpu: CpuClock | None, tls: ssl.SSLContext | None = None,
) -> list[Point]:  # fmt: skip
    """Up by doubling from a quarter of `closed_rps` until a rate fails, then bisect."""
    points: list[Point] = []
    good, bad, rate = 0.0, math.inf, max(closed_rps / 4, plan.min_rate)
    while not (good and bad < math.inf) and plan.min_rate <= rate <= plan.max_rate:
        await settle(cpu, plan)
        points.append(await rate_point(address, call, plan, rate, tls))
        if points[-1].sustained:
            good, rate = rate, rate * 2
        else:
            bad, rate = rate, rate / 2
    for _ in range(plan.bisect if good and not math.isinf(bad) else 0):
        rate = (good + bad) / 2
        await settle(cpu, plan)
        points.append(await rate_point(address, call, plan, rate, tls))
        good, bad = (rate, bad) if points[-1].sustained else (good, rate)
    return points


async def settle(cpu: CpuClock | None, plan: Plan) -> None:
    """Wait `plan.pause`, then until the gateway uses under 5 % of its core (a gateway that was
    overloaded can take seconds to work off requests whose clients have gone)."""
    await asyncio.sleep(plan.pause)
    deadline, step = loadgen.now() + plan.settle_limit, 0.5
    while cpu and loadgen.now() < deadline:
        before = cpu()
        await asyncio.sleep(step)
        if cpu() - before < 0.05 * step:
            return
    if cpu:
        print(f"    (the gateway was still busy after {plan.settle_limit:g} s)", flush=True)


async def rate_point(
    address: tuple[str, int],
    call: loadgen.Call,
    plan: Plan,
    rate: float,
    tls: ssl.SSLContext | None = None,
) -> Point:
    tally = await loadgen.open_loop(
        address, call, rate=rate, duration=plan.sweep_duration, seed=plan.seed, tls=tls
    )
    latencies = [o.latency * 1000 for o in tally.ok]
    p99 = percentile(latencies, 99)
    allowed = plan.max_failures * tally.offered
    sustained = tally.failed <= allowed and p99 <= plan.slo_ms
    last = max((o.done for o in tally.ok), default=0.0)
    first = min((o.intended for o in tally.ok), default=0.0)
    achieved = len(tally.ok) / (last - first) if last > first else 0.0
    point = Point(round(rate), achieved, percentile(latencies, 50), p99, tally.failed, sustained)
    verdict = "sustained" if sustained else "NOT sustained"
    print(
        f"    open loop {point.rate}/s: {achieved:.0f}/s done, p50 {point.p50:.2f} ms, "
        f"p99 {p99:.2f} ms, {tally.failed} failed: {verdict}",
        flush=True,
    )
    return point
