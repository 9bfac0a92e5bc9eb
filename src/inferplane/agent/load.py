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
    return load.model_copy(
        update={
            "ttftSeconds": _mean(before.ttft_sum, now.ttft_sum, before.ttft_count, now.ttft_count),
            "tpotSeconds": _mean(before.tpot_sum, now.tpot_sum, before.tpot_count, now.tpot_count),
            "promptTokensPerSecond": _rate(before.prompt_tokens, now.prompt_tokens, seconds),
            "generationTokensPerSecond": _rate(
                before.generation_tokens, now.generation_tokens, seconds
            ),
            "requestsPerSecond": _rate(before.requests, now.requests, seconds),
        }
    )


def _mean(
    sum_before: float | None,
    sum_now: float | None,
    count_before: float | None,
    count_now: float | None,
) -> float | None:
    """A histogram's mean over the interval; None when nothing was observed in it."""
    count = _increase(count_before, count_now)
    total = _increase(sum_before, sum_now)
    return total / count if count and total is not None else None


def _increase(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return after - before if after >= before else after  # a reset counts from zero


def _rate(before: float | None, after: float | None, seconds: float) -> float:
    increase = _increase(before, after)
    return max(increase, 0.0) / seconds if increase is not None else 0.0
