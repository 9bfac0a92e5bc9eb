"""What the autoscaling policy reads: replica samples, gateway samples and one decision's inputs.

All times are the caller's clock, in seconds; the policy never reads one of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferplane.api import autoscaling


@dataclass(frozen=True)
class Sample:
    """One replica's load at one time, from the agent's scrape."""

    time: float
    """Seconds (epoch), the caller's clock."""
    replica: str
    running: float = 0.0
    waiting: float = 0.0
    kv_cache_usage: float = 0.0
    rps: float = 0.0
    """Finished requests per second over the agent's interval."""
    tokens_per_second: float = 0.0
    """Generated tokens per second."""
    ttft: float | None = None
    """Seconds, mean over the agent's interval."""
    tpot: float | None = None
    """Seconds, mean over the agent's interval."""


@dataclass(frozen=True)
class GatewaySample:
    """One gateway's view of one deployment at one time."""

    time: float
    gateway: str
    in_flight: int = 0
    """Requests the gateway has sent to the deployment's engines and not finished."""
    held: int = 0
    """Requests held because no replica is ready (scale from zero)."""
    arrivals: int = 0
    """Requests that arrived for the deployment since this gateway's previous sample."""


@dataclass(frozen=True)
class Inputs:
    """Everything one decision reads besides the spec and the carried state."""

    now: float
    current: int
    """spec.replicas now: what the autoscaler last wrote or the user set."""
    ready: frozenset[str]
    """Names of Ready replicas: the base of the rate bounds, and whose latency counts."""
    starting: int
    """Replicas created but not Ready yet (Pending, Scheduled, Starting): capacity in flight."""
    samples: Sequence[Sample]
    """Any age, of every replica bound in the window (gone ones included): the policy drops
    those older than the window (windows.py)."""
    gateway: Sequence[GatewaySample] = ()
    last_request_time: float | None = None
    """Latest time a request arrived for this deployment; None if none was ever seen."""
    cold_start_seconds: float | None = None
    """Measured for this deployment, for predictive mode."""


def metric_value(sample: Sample, metric: autoscaling.Metric) -> float:
    """One replica's value of a spec metric in one sample."""
    if metric == "concurrency":
        return sample.running + sample.waiting
    if metric == "rps":
        return sample.rps
    if metric == "tokensPerSecond":
        return sample.tokens_per_second
    if metric == "kvCacheUsage":
        return sample.kv_cache_usage
    return sample.waiting
