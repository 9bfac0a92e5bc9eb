"""The deployment's total load over a window: the time average of the fleet's total, as
Knative's metric collector reckons it.

Each sample stands for the load of its replica from that replica's previous sample up to its
own (the agent's interval; the first one in a window reaches back to the window's start at
most). The total over a window is the integral of all replicas' load divided by the span the
samples cover. So a replica that served the first half of the window counts half, and one that
turned Ready a moment ago almost nothing. The total load therefore stays the same when it is
spread over more or fewer replicas, and a scale-down does not read as a fall in load (averaging
each replica over the window and summing the averages does: it oscillates on a steady load).

Only samples count: the agent reports a replica only while it is Ready, and the caller passes
the samples of the deployment's replicas that were bound in the window (gone ones included,
since the load they served is the load that moved to the others). The load is unknown while
replicas are ready or starting but none has a sample in the window (the agent has not
scraped them yet): a decision then holds the replicas, as Knative's does without data. With
nothing ready or starting, the load is the gateways'.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

from inferplane.api import autoscaling
from inferplane.policy.autoscaling import samples


def replica_total(
    inputs: samples.Inputs, *, metric: autoscaling.Metric, seconds: float, latest: bool = False
) -> float | None:
    """The time-averaged total of the metric over the window (or, with `latest`, the sum of
    each ready replica's latest value in it); None when no sample falls in the window."""
    since = inputs.now - seconds
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for sample in inputs.samples:
        series[sample.replica].append((sample.time, samples.metric_value(sample, metric)))
    if latest:
        found = [
            max((t, v) for t, v in kept if t >= since)
            for name, kept in series.items()
            if name in inputs.ready and any(t >= since for t, _ in kept)
        ]
        return sum(v for _, v in found) if found else None
    area, start = 0.0, inputs.now
    for unordered in series.values():
        kept = _merged(unordered)
        previous: float | None = None
        for t, value in kept:
            if t >= since:
                begin = max(previous if previous is not None else t - _gap(kept), since)
                area += value * max(t - begin, 0.0)
                start = min(start, begin)
            previous = t
    if start >= inputs.now:
        return None
    return area / (inputs.now - start)


def _merged(kept: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """In time order, samples taken at the same instant averaged into one."""
    at: dict[float, list[float]] = defaultdict(list)
    for t, value in kept:
        at[t].append(value)
    return [(t, sum(v) / len(v)) for t, v in sorted(at.items())]


def _gap(kept: list[tuple[float, float]]) -> float:
    """The replica's reporting interval (the median gap between its samples), for the span
    its first sample stands for; 1 s with a single sample."""
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(kept) if b[0] > a[0])
    return gaps[len(gaps) // 2] if gaps else 1.0


def latest_per_gateway(
    gateway: Sequence[samples.GatewaySample], *, now: float, seconds: float
) -> list[samples.GatewaySample]:
    """Each gateway's latest sample within the window."""
    latest: dict[str, samples.GatewaySample] = {}
    for sample in gateway:
        if sample.time >= now - seconds:
            seen = latest.get(sample.gateway)
            if seen is None or sample.time >= seen.time:
                latest[sample.gateway] = sample
    return list(latest.values())


def held(inputs: samples.Inputs, *, seconds: float) -> int:
    """Requests the gateways hold for want of a ready replica, by their latest samples."""
    return sum(s.held for s in latest_per_gateway(inputs.gateway, now=inputs.now, seconds=seconds))


def arrival_rate(inputs: samples.Inputs, *, seconds: float) -> float:
    """Requests per second arriving at the gateways over the window."""
    since = inputs.now - seconds
    return sum(s.arrivals for s in inputs.gateway if s.time >= since) / seconds


def demand(
    spec: autoscaling.AutoscalingSpec,
    inputs: samples.Inputs,
    *,
    seconds: float,
    latest: bool = False,
) -> float | None:
    """The deployment's total of the spec's metric over the window, gateway demand included;
    None when the load is unknown (see `known`)."""
    total = replica_total(inputs, metric=spec.metric, seconds=seconds, latest=latest)
    if total is None:
        if inputs.ready or inputs.starting:
            return None
        # Nothing runs to sample (e.g. at zero): the load is what the gateways see.
        total = arrival_rate(inputs, seconds=seconds) if spec.metric == "rps" else 0.0
    if spec.metric == "concurrency":
        # Held requests are concurrency that no replica sees yet.
        total += held(inputs, seconds=spec.panicWindowSeconds)
    return total
