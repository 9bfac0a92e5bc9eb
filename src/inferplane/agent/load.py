"""An engine's load from its Prometheus metrics: gauges as they are, counters as rates.

Pure functions: text in, numbers out. `Sample` is one scrape reduced to the numbers a recipe's
`MetricNames` point at; `load_between` turns two scrapes into a ReplicaLoad, the way
Prometheus' `rate()` would (a counter that went down was reset, so it counts from zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from inferplane.agent.recipes import MetricNames
from inferplane.api import replicas


def parse(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text exposition, summed over its label sets."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parsed = _sample(line)
        if parsed is not None:
            name, value = parsed
            totals[name] = totals.get(name, 0.0) + value
    return totals


def _sample(line: str) -> tuple[str, float] | None:
    brace = line.find("{")
    space = line.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        name, rest = line[:brace], _after_labels(line, brace)
    else:
        name, _, rest = line.partition(" ")
    words = rest.split()
    if not name or not words:
        return None
    try:
        value = float(words[0])
    except ValueError:
        return None
    return (name, value) if math.isfinite(value) else None


def _after_labels(line: str, start: int) -> str:
    """What follows the `{...}` that opens at `start`, minding quoted label values."""
    quoted = escaped = False
    for i in range(start + 1, len(line)):
        char = line[i]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "}" and not quoted:
            return line[i + 1 :]
    return ""


@dataclass(frozen=True)
class Sample:
    """One scrape: the numbers a recipe's metric names point at, and when it was taken."""

    at: float
    """Monotonic seconds, for rates."""
    observed: datetime
    running: float
    waiting: float
    kv_cache_usage: float
    ttft_sum: float | None
    ttft_count: float | None
    prompt_tokens: float | None
    generation_tokens: float | None
    requests: float | None


def sample(
    metrics: dict[str, float], names: MetricNames, *, at: float, observed: datetime
) -> Sample:
    def first(candidates: tuple[str, ...], suffix: str = "") -> float | None:
        return next((metrics[n + suffix] for n in candidates if n + suffix in metrics), None)

    return Sample(
        at=at,
        observed=observed,
        running=first(names.running) or 0.0,
        waiting=first(names.waiting) or 0.0,
        kv_cache_usage=first(names.kv_cache_usage) or 0.0,
        ttft_sum=first(names.ttft_histogram, "_sum"),
        ttft_count=first(names.ttft_histogram, "_count"),
        prompt_tokens=first(names.prompt_tokens),
        generation_tokens=first(names.generation_tokens),
        requests=first(names.requests),
    )


def load_between(previous: Sample | None, current: Sample) -> replicas.ReplicaLoad:
    """The load over the interval between two scrapes (gauges only, for the first one)."""
    load = replicas.ReplicaLoad(
        running=max(round(current.running), 0),
        waiting=max(round(current.waiting), 0),
        kvCacheUsage=min(max(current.kv_cache_usage, 0.0), 1.0),
        observedTime=current.observed,
    )
    if previous is None or current.at <= previous.at:
        return load
    seconds = current.at - previous.at
    ttft_count = _increase(previous.ttft_count, current.ttft_count)
    ttft_sum = _increase(previous.ttft_sum, current.ttft_sum)
    return load.model_copy(
        update={
            "ttftSeconds": ttft_sum / ttft_count if ttft_count and ttft_sum is not None else None,
            "promptTokensPerSecond": _rate(previous.prompt_tokens, current.prompt_tokens, seconds),
            "generationTokensPerSecond": _rate(
                previous.generation_tokens, current.generation_tokens, seconds
            ),
            "requestsPerSecond": _rate(previous.requests, current.requests, seconds),
        }
    )


def _increase(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return after - before if after >= before else after  # a reset counts from zero


def _rate(before: float | None, after: float | None, seconds: float) -> float:
    increase = _increase(before, after)
    return max(increase, 0.0) / seconds if increase is not None else 0.0
