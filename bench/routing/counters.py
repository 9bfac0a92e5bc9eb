"""What the engines' own /metrics say, and the figures made from it: prefix-cache hit rate
over a run (counter deltas, summed over engines) and how evenly load spread (samples of
running + waiting per engine). Pure: text in, numbers out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

QUERIES, HITS = "vllm:prefix_cache_queries", "vllm:prefix_cache_hits"
RUNNING, WAITING = "vllm:num_requests_running", "vllm:num_requests_waiting"


@dataclass(frozen=True)
class EngineCounters:
    """One scrape of one engine: prefix-cache counters (tokens) and its queue."""

    queries: float = 0.0
    hits: float = 0.0
    running: float = 0.0
    waiting: float = 0.0

    @property
    def load(self) -> float:
        return self.running + self.waiting


@dataclass(frozen=True)
class HitRate:
    hits: float
    queries: float

    @property
    def rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


@dataclass(frozen=True)
class Balance:
    """Per-replica in-flight load (engine running + waiting) over a run's samples."""

    means: tuple[float, ...]
    """Each replica's mean load over the samples."""
    sample_p90: float
    """The 90th percentile, over samples whose mean load is at least 1, of max / mean."""

    @property
    def ratio(self) -> float:
        """The busiest replica's mean load over the mean of all replicas'."""
        mean = sum(self.means) / len(self.means) if self.means else 0.0
        return max(self.means) / mean if mean else 0.0


def parse(text: str) -> EngineCounters:
    """The counters in a Prometheus text page, summed over label sets; a counter may carry
    the `_total` suffix (prometheus_client adds it) or not."""
    values = {QUERIES: 0.0, HITS: 0.0, RUNNING: 0.0, WAITING: 0.0}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].removesuffix("_total")
        if name in values:
            values[name] += float(value)
    return EngineCounters(values[QUERIES], values[HITS], values[RUNNING], values[WAITING])


def hit_rate(before: Sequence[EngineCounters], after: Sequence[EngineCounters]) -> HitRate:
    """Prefix-cache hits over queries in the run, summed over engines (in the same order)."""
    if len(before) != len(after):
        raise ValueError(f"after: {len(after)} engines, before: {len(before)}")
    hits = queries = 0.0
    for index, (b, a) in enumerate(zip(before, after, strict=True)):
        if a.queries < b.queries or a.hits < b.hits:
            raise ValueError(f"engine {index}: its counters went down (restarted mid-run?)")
        hits += a.hits - b.hits
        queries += a.queries - b.queries
    return HitRate(hits, queries)


def balance(samples: Sequence[Sequence[float]]) -> Balance:
    """From samples of per-replica loads (one row per sampling instant)."""
    if not samples:
        return Balance((), 0.0)
    width = len(samples[0])
    means = tuple(sum(row[i] for row in samples) / len(samples) for i in range(width))
    ratios = [max(row) / (sum(row) / width) for row in samples if sum(row) / width >= 1]
    return Balance(means, percentile(ratios, 90) if ratios else 0.0)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
