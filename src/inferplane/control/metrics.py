"""Prometheus metrics of the control plane, in a registry of its own per app instance."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "inferplane_api_requests",
            "Resource API requests by verb, resource and HTTP code.",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "inferplane_api_request_duration_seconds",
            "Resource API request latency (watch streams excluded).",
            ["verb", "resource"],
            registry=self.registry,
        )
        self.watchers = Gauge(
            "inferplane_api_watches", "Open watch streams.", ["resource"], registry=self.registry
        )
        self.resource_version = Gauge(
            "inferplane_store_resource_version",
            "The store's newest resourceVersion.",
            registry=self.registry,
        )
        self.reconciles = Counter(
            "inferplane_controller_reconciles",
            "Reconcile calls by controller and result (ok, error, requeue).",
            ["controller", "result"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "inferplane_controller_leader",
            "1 on the control-plane replica that holds the controllers lease.",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "inferplane_controller_queue_depth",
            "Keys waiting in a controller's work queue.",
            ["controller"],
            registry=self.registry,
        )
