"""The numbers of a run, from its outcomes and replica samples (pure: no clock, no network):
per phase TTFT and latency percentiles, errors and mean replicas; replica-seconds (the
integral of live and of ready replicas over the load); ratios of one run to another."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from bench.autoscaling.runs import RunResult
from bench.autoscaling.sampler import ReplicaSample
from inferplane.cli import loadstats as stats


@dataclass(frozen=True)
class Phase:
    clients: int
    start: float
    end: float
    requests: int
    errors: dict[str, int]
    ttft_p50: float | None
    ttft_p90: float | None
    latency_p50: float | None
    latency_p90: float | None
    live_mean: float
    ready_mean: float
    bench_cores: float | None = None
    """Cores this bench's processes (the fleet, its engines, the load) kept busy on average."""
    other_cores: float | None = None
    """Cores busy with anything else on the machine meanwhile (someone else's load)."""


@dataclass(frozen=True)
class RunFigures:
    label: str
    seconds: float
    phases: list[Phase]
    replica_seconds: float
    """Integral of live replicas over the load (Pending to Draining: each holds its slot)."""
    ready_replica_seconds: float
    peak_live: int
    requests: int
    errors: dict[str, int] = field(default_factory=dict)
    bench_cores: float | None = None
    other_cores: float | None = None


def points(samples: list[ReplicaSample], origin: float, attr: str) -> list[tuple[float, float]]:
    """(seconds since origin, value) of one field of the samples, in time order."""
    return sorted((s.time - origin, float(getattr(s, attr))) for s in samples)


def integral(series: list[tuple[float, float]], start: float, end: float) -> float:
    """∫ of a step function (each sample's value holds until the next) over [start, end];
    before the first sample, the first sample's value."""
    if not series or end <= start:
        return 0.0
    total = 0.0
    edges = [*[t for t, _ in series[1:]], math.inf]
    previous_value = series[0][1]
    if series[0][0] > start:
        total += previous_value * (min(series[0][0], end) - start)
    for (t, value), until in zip(series, edges, strict=True):
        low, high = max(t, start), min(until, end)
        if high > low:
            total += value * (high - low)
    return total


def cores(
    samples: list[ReplicaSample], origin: float, start: float, end: float
) -> tuple[float | None, float | None]:
    """(bench's, others') mean busy cores between the first sample at or after `start` and
    the last at or before `end`."""
    inside = [s for s in samples if start <= s.time - origin <= end]
    if len(inside) < 2 or inside[-1].time <= inside[0].time:
        return None, None
    first, last = inside[0], inside[-1]
    wall = last.time - first.time
    bench = (last.bench_cpu - first.bench_cpu) / wall
    machine = (last.machine_cpu - first.machine_cpu) / wall
    return bench, max(machine - bench, 0.0)


def summarise(result: RunResult) -> RunFigures:
    live = points(result.samples, result.started, "live")
    ready = points(result.samples, result.started, "ready")
    steps = stats.per_step(result.plan, result.outcomes, elapsed=result.elapsed)
    phases, edge = [], 0.0
    for step, summary in zip(result.plan, steps, strict=False):
        end = min(edge + step.seconds, result.elapsed)
        span = max(end - edge, 1e-9)
        phases.append(
            Phase(
                step.clients, edge, end, summary.requests, summary.errors,
                summary.ttft_p50, summary.ttft_p90, summary.latency_p50, summary.latency_p90,
                integral(live, edge, end) / span, integral(ready, edge, end) / span,
                *cores(result.samples, result.started, edge, end),
            )
        )  # fmt: skip
        edge += step.seconds
    whole = stats.overall(result.outcomes, elapsed=result.elapsed)
    inside = [v for t, v in live if 0 <= t <= result.elapsed]
    bench, other = cores(result.samples, result.started, 0.0, result.elapsed)
    return RunFigures(
        label=result.spec.label,
        seconds=result.elapsed,
        phases=phases,
        replica_seconds=integral(live, 0.0, result.elapsed),
        ready_replica_seconds=integral(ready, 0.0, result.elapsed),
        peak_live=int(max(inside, default=0)),
        requests=whole.requests,
        errors=whole.errors,
        bench_cores=bench,
        other_cores=other,
    )


def ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or baseline is None or baseline == 0:
        return None
    return ours / baseline


@dataclass(frozen=True)
class Ratios:
    """Ours over the baseline's."""

    replica_seconds: float | None
    ready_replica_seconds: float | None
    ttft_p50: list[float | None]
    """Per phase."""
    ttft_p90: list[float | None]


def ratios(ours: RunFigures, baseline: RunFigures) -> Ratios:
    pairs = list(zip(ours.phases, baseline.phases, strict=False))
    return Ratios(
        ratio(ours.replica_seconds, baseline.replica_seconds),
        ratio(ours.ready_replica_seconds, baseline.ready_replica_seconds),
        [ratio(a.ttft_p50, b.ttft_p50) for a, b in pairs],
        [ratio(a.ttft_p90, b.ttft_p90) for a, b in pairs],
    )


def ttft_bins(result: RunResult, width: float) -> list[tuple[float, float | None, float | None]]:
    """(bin start, TTFT p50, p90) of the requests sent in each `width`-second bin."""
    bins = []
    for index in range(math.ceil(result.elapsed / width)):
        low = index * width
        sent = [
            o.ttft
            for o in result.outcomes
            if o.error is None and o.ttft is not None and low <= o.start < low + width
        ]
        bins.append((low, stats.percentile(sent, 50), stats.percentile(sent, 90)))
    return bins


@dataclass(frozen=True)
class Ramp:
    """The first seconds after a step up in clients."""

    at: float
    clients_before: int
    clients: int
    requests: int
    """Sent in the window and answered."""
    ttft_p50: float | None
    ttft_p90: float | None
    scaled_after: float | None
    """Seconds from the step to the first Scaled event."""
    capacity_after: float | None
    """Seconds from the step to the first sample with the phase's most Ready replicas."""
    capacity: int


def ramps(result: RunResult, seconds: float) -> list[Ramp]:
    found, edge = [], 0.0
    for before, step in itertools.pairwise(result.plan):
        edge += before.seconds
        if step.clients <= before.clients:
            continue
        sent = [
            o.ttft
            for o in result.outcomes
            if o.error is None and o.ttft is not None and edge <= o.start < edge + seconds
        ]
        ready = [
            (t, v)
            for t, v in points(result.samples, result.started, "ready")
            if edge <= t <= edge + step.seconds
        ]
        most = int(max((v for _, v in ready), default=0))
        full = next((t - edge for t, v in ready if v >= most), None)
        scaled = next((t - edge for t, _ in result.scaled if t >= edge), None)
        found.append(
            Ramp(
                edge,
                before.clients,
                step.clients,
                len(sent),
                stats.percentile(sent, 50),
                stats.percentile(sent, 90),
                scaled,
                full,
                most,
            )
        )
    return found
