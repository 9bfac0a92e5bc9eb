"""The gateway's Prometheus metrics, per service and endpoint.

The request path only adds to plain dictionaries keyed by label tuples (no locks, no label
objects); a collector turns them into Prometheus families when /metrics is scraped. One
event loop thread writes them, so nothing else is needed.

Who scrapes decides what the page holds (`render`): a fleet key every series, a tenant's key
its own namespace's, an anonymous caller only the gateway's own (no series that names a
tenant's service, endpoint or fallback target).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
)
PREFIX = "inferplane_gateway_"
TENANT_LABEL = "service"
"""The label ("namespace/name", or "-" for a request that reached no Service) that makes a
series a tenant's; the endpoint and fallback-target labels only ever stand beside it."""
FLEET_LABEL = "cluster"
"""The label that makes a series the fleet operator's: shown to a fleet key only."""
FLEET = "*"
"""The scope of a fleet key: every series (no namespace is named "*")."""

Labels = tuple[str, ...]


class Count:
    """A counter (or, with `gauge`, a gauge) over label tuples."""

    __slots__ = ("doc", "gauge", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: Labels, *, gauge: bool = False) -> None:
        self.name, self.doc, self.labels, self.gauge = PREFIX + name, doc, labels, gauge
        self.values: dict[Labels, float] = {}

    def inc(self, key: Labels, amount: float = 1.0) -> None:
        values = self.values
        values[key] = values.get(key, 0.0) + amount

    def set(self, key: Labels, value: float) -> None:
        self.values[key] = value

    def family(self, scope: str | None) -> Metric:
        kind = GaugeMetricFamily if self.gauge else CounterMetricFamily
        family = kind(self.name, self.doc, labels=list(self.labels))
        for key, value in _scoped(self.values, self.labels, scope):
            family.add_metric(list(key), value)
        return family


class Spread:
    """A histogram over label tuples."""

    __slots__ = ("buckets", "doc", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: Labels) -> None:
        self.name, self.doc, self.labels = PREFIX + name, doc, labels
        self.buckets = LATENCY_BUCKETS
        self.values: dict[Labels, list[float]] = {}
        """Per label tuple: a count per bucket (+Inf last), then the sum."""

    def observe(self, key: Labels, value: float) -> None:
        counts = self.values.get(key)
        if counts is None:
            counts = self.values[key] = [0.0] * (len(self.buckets) + 2)
        counts[bisect.bisect_left(self.buckets, value)] += 1
        counts[-1] += value

    def family(self, scope: str | None) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=list(self.labels))
        for key, counts in _scoped(self.values, self.labels, scope):
            running, cumulative = 0.0, []
            for bound, count in zip((*self.buckets, float("inf")), counts[:-1], strict=True):
                running += count
                cumulative.append((str(bound) if bound != float("inf") else "+Inf", running))
            family.add_metric(list(key), cumulative, counts[-1])
        return family


class GatewayMetrics:
    """Every metric of the gateway; `render` makes the page one caller may see."""

    def __init__(self) -> None:
        self.requests = Count(
            "requests",
            "Requests answered, by service, endpoint and HTTP status.",
            ("service", "endpoint", "status"),
        )
        self.errors = Count(
            "errors",
            "Requests that failed, by cause (bad_request, auth, "
            "rate_limit, budget, no_endpoint, upstream, timeout).",
            ("service", "cause"),
        )
        self.latency = Spread(
            "request_duration_seconds", "Whole request, as the client saw it.", ("service",)
        )
        self.ttft = Spread(
            "time_to_first_token_seconds",
            "From the request's arrival to the first byte of the answer sent to the client.",
            ("service",),
        )
        self.tokens = Count(
            "tokens",
            "Tokens by direction (input: prompt, output: generated), from the upstream's usage.",
            ("service", "direction"),
        )
        self.cost = Count("cost", "Cost of the tokens served, priced by the Service.", ("service",))
        self.retries = Count(
            "retries",
            "Attempts sent to another endpoint after a failure before the first byte.",
            ("service",),
        )
        self.resumes = Count(
            "resumes",
            "Streams resumed on another endpoint after a failure mid-stream.",
            ("service",),
        )
        self.fallbacks = Count(
            "fallbacks",
            "Requests sent down a Service's fallback chain, by the step taken.",
            ("service", "target"),
        )
        self.decisions = Count(
            "routing_decisions",
            "Endpoint choices, by strategy and whether they left the gateway's region.",
            ("service", "strategy", "spilled"),
        )
        self.in_flight = Count(
            "in_flight_requests",
            "Requests sent to an endpoint and not yet finished.",
            ("service", "endpoint"),
            gauge=True,
        )
        self.held = Count(
            "held_requests",
            "Requests waiting for a replica to become ready (scale from zero).",
            ("service",),
            gauge=True,
        )
        self.tunnels = Count(
            "tunnels",
            "Plane edges' tunnels connected to this gateway, per cluster.",
            ("cluster",),
            gauge=True,
        )
        self.tunnel_streams = Count(
            "tunnel_streams_total",
            "Connections to a plane's engines carried through its tunnel.",
            ("cluster",),
        )
        self.table_age = Count(
            "routing_table_age_seconds",
            "Seconds since the last change heard from the control plane (grows while it is down).",
            (),
            gauge=True,
        )

    def families(self, scope: str | None) -> Iterator[Metric]:
        """Without a scope the families with a service label are left out, not shown empty:
        the anonymous page lists only what it can show."""
        for metric in vars(self).values():
            if not isinstance(metric, Count | Spread):
                continue
            if FLEET_LABEL in metric.labels and scope != FLEET:
                continue  # the fleet's planes are the operator's to see, not a tenant's
            if scope is not None or TENANT_LABEL not in metric.labels:
                yield metric.family(scope)

    def render(self, scope: str | None) -> bytes:
        """The page as `scope` sees it: FLEET every series; a namespace the series of its own
        services and the gateway's own (such as the table's age); None (no key) the gateway's
        own only, without the families whose every series is a tenant's."""
        registry = CollectorRegistry()
        registry.register(_Scoped(self, scope))
        return generate_latest(registry)


class _Scoped(Collector):
    """One caller's view of the gateway's metrics, for one scrape."""

    def __init__(self, metrics: GatewayMetrics, scope: str | None) -> None:
        self.metrics, self.scope = metrics, scope

    def collect(self) -> Iterator[Metric]:
        return self.metrics.families(self.scope)


V = TypeVar("V")


def _scoped(
    values: dict[Labels, V], labels: Labels, scope: str | None
) -> Iterable[tuple[Labels, V]]:
    """The series `scope` may see: all of a metric without a service label; of one with it,
    all to FLEET, none to None (no key), and to a namespace those whose service
    ("namespace/name") is its. Requests that named no service of anyone ("-") are every
    tenant's together, so they are not one tenant's to see."""
    if scope == FLEET or TENANT_LABEL not in labels:
        return values.items()
    if scope is None:
        return ()
    prefix = f"{scope}/"
    at = labels.index(TENANT_LABEL)
    return [(key, value) for key, value in values.items() if key[at].startswith(prefix)]
