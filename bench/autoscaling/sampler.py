"""The deployment's replicas, sampled from the control API every second while a run lasts:
live (every Replica object, draining ones included: they hold their slot until stopped),
ready (phase Ready and not being deleted), spec.replicas, and both counts per cluster."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.autoscaling import cpu
from bench.autoscaling.objects import NAMESPACE
from inferplane import client as api_client
from inferplane.api.wellknown import DEPLOYMENT_LABEL


@dataclass(frozen=True)
class ReplicaSample:
    time: float
    """Wall-clock seconds (epoch) when the list was answered."""
    live: int
    ready: int
    desired: int
    clusters: dict[str, tuple[int, int]] = field(default_factory=dict)
    """cluster → (live, ready); "-" for replicas not yet bound."""
    machine_cpu: float = 0.0
    """CPU seconds the machine's cores have been busy (since boot)."""
    bench_cpu: float = 0.0
    """CPU seconds of this bench's process tree (the fleet, its engines, the load)."""


def replicas_of(client: api_client.Client, deployment: str) -> list[dict[str, Any]]:
    selector = f"{DEPLOYMENT_LABEL}={deployment}"
    return client.list("Replica", namespace=NAMESPACE, label_selector=selector).items


def is_ready(replica: dict[str, Any]) -> bool:
    deleting = bool(replica["metadata"].get("deletionTimestamp"))
    return not deleting and (replica.get("status") or {}).get("phase") == "Ready"


def sample(client: api_client.Client, deployment: str) -> ReplicaSample:
    found = replicas_of(client, deployment)
    desired = int(client.get("Deployment", deployment, namespace=NAMESPACE)["spec"]["replicas"])
    clusters: dict[str, tuple[int, int]] = {}
    for replica in found:
        cluster = (replica.get("spec") or {}).get("cluster") or "-"
        live, ready = clusters.get(cluster, (0, 0))
        clusters[cluster] = (live + 1, ready + is_ready(replica))
    ready = sum(is_ready(r) for r in found)
    return ReplicaSample(
        time.time(),
        len(found),
        ready,
        desired,
        dict(sorted(clusters.items())),
        machine_cpu=cpu.machine_seconds(),
        bench_cpu=cpu.tree_seconds(),
    )


class Sampler(threading.Thread):
    """Samples one deployment every `period` seconds until stopped, on a client of its own."""

    def __init__(self, url: str, token: str, deployment: str, period: float = 1.0) -> None:
        super().__init__(name=f"sampler-{deployment}", daemon=True)
        self.url, self.token, self.deployment, self.period = url, token, deployment, period
        self.samples: list[ReplicaSample] = []
        self.failures = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        with api_client.Client(self.url, self.token, timeout=5.0) as client:
            next_at = time.monotonic()
            while not self._stop_event.is_set():
                try:
                    self.samples.append(sample(client, self.deployment))
                except api_client.ClientError:
                    self.failures += 1
                next_at += self.period
                self._stop_event.wait(max(0.0, next_at - time.monotonic()))

    def latest(self) -> ReplicaSample | None:
        return self.samples[-1] if self.samples else None

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
