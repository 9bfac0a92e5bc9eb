"""`/metrics` with vLLM's metric names, so anything that reads vLLM reads this engine too.

Engine state (running, waiting, KV usage, prefix-cache counters) is read from the engine
thread's latest `EngineStats` at scrape time; request latencies and token counts are
observed by the server as outputs stream by. An embedding model has its own, smaller set
(`EmbeddingMetrics`) under the same names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from inferplane.engine.async_engine import AsyncEngine
from inferplane.engine.llm import EngineInfo
from inferplane.engine.outputs import SequenceOutput

TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0)


class _EngineCollector(Collector):
    """The gauges and counters that mirror the engine's own bookkeeping."""

    def __init__(self, engine: AsyncEngine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name

    def collect(self) -> Iterator[Metric]:
        stats = self.engine.stats
        values = [
            ("vllm:num_requests_running", "Requests in the running batch.", stats.num_running),
            ("vllm:num_requests_waiting", "Requests waiting to run.", stats.num_waiting),
            (
                "vllm:kv_cache_usage_perc",
                "KV-cache usage; 1 means 100 percent.",
                stats.kv_cache_usage,
            ),
        ]
        for name, doc, value in values:
            yield _gauge(name, doc, self.model_name, value)
        counters = [
            (
                "vllm:prefix_cache_queries",
                "Prefix-cache queries, in tokens.",
                stats.prefix_cache_queries,
            ),
            ("vllm:prefix_cache_hits", "Prefix-cache hits, in tokens.", stats.prefix_cache_hits),
        ]
        for name, doc, value in counters:
            counter = CounterMetricFamily(name, doc, labels=["model_name"])
            counter.add_metric([self.model_name], value)
            yield counter


def _gauge(name: str, doc: str, model_name: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, doc, labels=["model_name"])
    gauge.add_metric([model_name], value)
    return gauge


@dataclass
class RequestTimer:
    """Times one request's outputs into the latency histograms."""

    metrics: Metrics
    started: float
    last: float | None = None

    def observe(self, output: SequenceOutput) -> None:
        now = self.metrics.clock()
        if output.token_ids:
            if self.last is None:
                self.metrics.ttft.observe(now - self.started)
            else:
                gap = (now - self.last) / len(output.token_ids)
                for _ in output.token_ids:
                    self.metrics.itl.observe(gap)
                    self.metrics.tpot.observe(gap)
            self.last = now
            self.metrics.generation_tokens.inc(len(output.token_ids))
        if output.finish_reason is not None:
            self.metrics.request_success.inc(output.finish_reason)

    def finish(self, prompt_tokens: int) -> None:
        self.metrics.e2e.observe(self.metrics.clock() - self.started)
        self.metrics.prompt_tokens.inc(prompt_tokens)


class Metrics:
    """One registry per app, so that two apps in one process never share series."""

    def __init__(self, engine: AsyncEngine, model_name: str, clock: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        self.registry.register(_EngineCollector(engine, model_name))
        self._cache_info(engine.info)
        label = {"model_name": model_name}
        self.ttft = _histogram(
            self.registry, "vllm:time_to_first_token_seconds", TTFT_BUCKETS, label
        )
        self.itl = _histogram(self.registry, "vllm:inter_token_latency_seconds", ITL_BUCKETS, label)
        self.tpot = _histogram(
            self.registry, "vllm:time_per_output_token_seconds", ITL_BUCKETS, label
        )
        self.e2e = _histogram(self.registry, "vllm:e2e_request_latency_seconds", E2E_BUCKETS, label)
        self.prompt_tokens = _counter(self.registry, "vllm:prompt_tokens", label)
        self.generation_tokens = _counter(self.registry, "vllm:generation_tokens", label)
        self.request_success = FinishedCounter.create(
            self.registry, model_name, ("stop", "length", "abort")
        )

    def _cache_info(self, info: EngineInfo) -> None:
        labels = {
            "block_size": str(info.block_size),
            "num_gpu_blocks": str(info.num_blocks),
            "enable_prefix_caching": str(info.enable_prefix_caching),
        }
        gauge = Gauge(
            "vllm:cache_config_info",
            "Information of the KV cache configuration.",
            list(labels),
            registry=self.registry,
        )
        gauge.labels(**labels).set(1)

    def timer(self) -> RequestTimer:
        return RequestTimer(self, self.clock())


def _histogram(
    registry: CollectorRegistry, name: str, buckets: tuple[float, ...], labels: dict[str, str]
) -> Histogram:
    doc = name.removeprefix("vllm:").replace("_", " ") + "."
    metric = Histogram(name, doc, list(labels), buckets=buckets, registry=registry)
    return metric.labels(**labels)


def _counter(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> Counter:
    doc = name.removeprefix("vllm:").replace("_", " ") + ", total."
    return Counter(name, doc, list(labels), registry=registry).labels(**labels)


@dataclass(frozen=True)
class FinishedCounter:
    """`vllm:request_success_total{model_name, finished_reason}`: finished requests (for a
    generative model, finished sequences), by finish reason."""

    counter: Counter
    model_name: str

    @classmethod
    def create(
        cls, registry: CollectorRegistry, model_name: str, reasons: tuple[str, ...]
    ) -> FinishedCounter:
        """The counter, its series for each of `reasons` shown at 0 from the start (as vLLM
        does), so a rate over them works before the first request."""
        doc = "Finished requests, by finish reason."
        labels = ["model_name", "finished_reason"]
        counter = Counter("vllm:request_success", doc, labels, registry=registry)
        for reason in reasons:
            counter.labels(model_name=model_name, finished_reason=reason)
        return cls(counter, model_name)

    def inc(self, reason: str) -> None:
        self.counter.labels(model_name=self.model_name, finished_reason=reason).inc()


class Load(Protocol):
    """Requests an embedding server holds: `num_running` in the batch, `num_waiting` for it."""

    @property
    def num_running(self) -> int: ...

    @property
    def num_waiting(self) -> int: ...


class _LoadCollector(Collector):
    def __init__(self, load: Load, model_name: str) -> None:
        self.load = load
        self.model_name = model_name

    def collect(self) -> Iterator[Metric]:
        running, waiting = self.load.num_running, self.load.num_waiting
        yield _gauge(
            "vllm:num_requests_running", "Requests in the running batch.", self.model_name, running
        )
        yield _gauge(
            "vllm:num_requests_waiting", "Requests waiting to run.", self.model_name, waiting
        )


class EmbeddingMetrics:
    """An embedding model's `/metrics`: running and waiting requests, prompt tokens, request
    latency and finished requests, under vLLM's names. One registry per service."""

    def __init__(self, load: Load, model_name: str) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_LoadCollector(load, model_name))
        label = {"model_name": model_name}
        self.e2e = _histogram(self.registry, "vllm:e2e_request_latency_seconds", E2E_BUCKETS, label)
        self.prompt_tokens = _counter(self.registry, "vllm:prompt_tokens", label)
        self.request_success = FinishedCounter.create(self.registry, model_name, ("stop",))

    def observe(self, *, seconds: float, prompt_tokens: int) -> None:
        """One request answered, in `seconds`, over `prompt_tokens` tokens."""
        self.e2e.observe(seconds)
        self.prompt_tokens.inc(prompt_tokens)
        self.request_success.inc("stop")
