"""An engine's load from its Prometheus metrics: gauges as they are, counters as rates.

Pure functions: text in, numbers out. The names and the parser are api/enginemetrics.py's,
shared with the gateway; here a `Sample` is one scrape's reading with when it was taken, and
`load_between` turns two scrapes into a ReplicaLoad, the way Prometheus' `rate()` would (a
counter that went down was reset, so it counts from zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inferplane.api import enginemetrics, replicas


@dataclass(frozen=True)
class Sample:
    """One scrape: the numbers a recipe's metric names point at, and when it was taken."""

    at: float
    """Monotonic seconds, for rates."""
    observed: datetime
    reading: enginemetrics.Reading


def sample(text: str, names: enginemetrics.MetricNames, *, at: float, observed: datetime) -> Sample:
    """One scrape's exposition, read under the recipe's names."""
    metrics = enginemetrics.parse(text, names.samples)
    return Sample(at=at, observed=observed, reading=enginemetrics.read(metrics, names))


def load_between(previous: Sample | None, current: Sample) -> replicas.ReplicaLoad:
    """The load over the interval between two scrapes (gauges only, for the first one)."""
    now = current.reading
    load = replicas.ReplicaLoad(
        running=max(round(now.running), 0),
        waiting=max(round(now.waiting), 0),
        kvCacheUsage=min(max(now.kv_cache_usage, 0.0), 1.0),
        observedTime=current.observed,
    )
    if previous is None or current.at <= previous.at:
        return load
    seconds = current.at - previous.at
    before = previous.reading
    ttft_count = _increase(before.ttft_count, now.ttft_count)
    ttft_sum = _increase(before.ttft_sum, now.ttft_sum)
    return load.model_copy(
        update={
            "ttftSeconds": ttft_sum / ttft_count if ttft_count and ttft_sum is not None else None,
            "promptTokensPerSecond": _rate(before.prompt_tokens, now.prompt_tokens, seconds),
            "generationTokensPerSecond": _rate(
                before.generation_tokens, now.generation_tokens, seconds
            ),
            "requestsPerSecond": _rate(before.requests, now.requests, seconds),
        }
    )


def _increase(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return after - before if after >= before else after  # a reset counts from zero


def _rate(before: float | None, after: float | None, seconds: float) -> float:
    increase = _increase(before, after)
    return max(increase, 0.0) / seconds if increase is not None else 0.0
