"""The gateway's Prometheus metrics, per service and endpoint.

Label children are cached per (service, endpoint): `labels()` costs a dictionary build and a
lock each call, and the request path should pay it once per pair, not per request.
"""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

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


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        p = "inferplane_gateway_"
        self.requests = Counter(
            p + "requests",
            "Requests answered, by service, endpoint and HTTP status.",
            ["service", "endpoint", "status"],
            registry=r,
        )
        self.errors = Counter(
            p + "errors",
            "Requests that failed, by cause (bad_request, auth, "
            "rate_limit, budget, no_endpoint, upstream, timeout).",
            ["service", "cause"],
            registry=r,
        )
        self.latency = Histogram(
            p + "request_duration_seconds",
            "Whole request, as the client saw it.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            p + "time_to_first_token_seconds",
            "From the request's arrival to the first byte of the answer sent to the client.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            p + "tokens",
            "Tokens by direction (input: prompt, output: generated), from the upstream's usage.",
            ["service", "direction"],
            registry=r,
        )
        self.cost = Counter(
            p + "cost", "Cost of the tokens served, priced by the Service.", ["service"], registry=r
        )
        self.retries = Counter(
            p + "retries",
            "Attempts sent to another endpoint after a failure before the first byte.",
            ["service"],
            registry=r,
        )
        self.resumes = Counter(
            p + "resumes",
            "Streams resumed on another endpoint after a failure mid-stream.",
            ["service"],
            registry=r,
        )
        self.fallbacks = Counter(
            p + "fallbacks",
            "Requests sent down a Service's fallback chain, by the step taken.",
            ["service", "target"],
            registry=r,
        )
        self.decisions = Counter(
            p + "routing_decisions",
            "Endpoint choices, by strategy and whether they left the gateway's region.",
            ["service", "strategy", "spilled"],
            registry=r,
        )
        self.in_flight = Gauge(
            p + "in_flight_requests",
            "Requests sent to an endpoint and not yet finished.",
            ["service", "endpoint"],
            registry=r,
        )
        self.held = Gauge(
            p + "held_requests",
            "Requests waiting for a replica to become ready (scale from zero).",
            ["service"],
            registry=r,
        )
        self.table_age = Gauge(
            p + "routing_table_age_seconds",
            "Seconds since the last change heard from the control plane (grows while it is down).",
            registry=r,
        )
        self._children: dict[tuple[object, ...], MetricWrapperBase] = {}

    def child(self, metric: M, *labels: str) -> M:
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found  # type: ignore[return-value]

    def render(self) -> bytes:
        return generate_latest(self.registry)
