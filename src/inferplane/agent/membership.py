"""The agent's place in the fleet: its Cluster and Pools, and the heartbeat that keeps the
cluster Ready.

The heartbeat writes facts only (status.lastHeartbeatTime, agentVersion and the runtime's
runtimeVersion): the cluster's
phase has one writer, the control plane's cluster controller (`policy.clusters.assess`),
which also shows a cordon as phase Cordoned.

Joining creates the Cluster (with the runtime the agent runs), or updates only what the
agent owns on it (the labels it was given, its region): a cordon, heartbeat grace or runtime
set by the platform team stays.
Pools are named CLUSTER-POOL; the agent writes their spec fields it knows and, of their
status, only readyNodes (the scheduler owns the allocations).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import inferplane
from inferplane import client as api_client
from inferplane import logs
from inferplane.agent import discovery
from inferplane.api.meta import API_VERSION

log = logging.getLogger(__name__)

Object = dict[str, Any]
CLUSTER_LABEL = "inferplane.dev/cluster"
"""Label on the Pools an agent writes, naming its cluster."""


@dataclass
class Membership:
    cluster: str
    labels: dict[str, str]
    pools: list[discovery.PoolPlan]
    runtime: str = "process"
    runtime_version: str | None = None
    """What the runtime said of its version, written as status.runtimeVersion."""
    rediscover: Callable[[], list[discovery.PoolPlan]] | None = None
    """The runtime's own pool discovery, asked again every `refresh_seconds`: a scheduler's
    nodes come and go while the agent runs. None: the pools are fixed (a pool file, the
    host)."""
    refresh_seconds: float = 60.0
    refreshed: float = 0.0
    """When the pools were last discovered (monotonic)."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    joined: bool = False

    def cluster_object(self) -> Object:
        spec: Object = {"region": self.labels.get("region", ""), "runtime": self.runtime}
        if "provider" in self.labels:
            spec["provider"] = self.labels["provider"]
        return {
            "apiVersion": API_VERSION,
            "kind": "Cluster",
            "metadata": {"name": self.cluster, "labels": dict(self.labels)},
            "spec": spec,
        }

    def join(self, client: api_client.Client) -> None:
        """Create or update the Cluster and the Pools; mark the pools' nodes ready."""
        cluster = self.cluster_object()
        # spec.runtime is written only when the agent creates its Cluster: on one that exists
        # the agent read it to pick its runtime, and it stays the platform team's to change.
        owned = {k: v for k, v in cluster["spec"].items() if k != "runtime"}
        patch = {"metadata": {"labels": cluster["metadata"]["labels"]}, "spec": owned}
        _upsert(client, "Cluster", self.cluster, patch, cluster)
        for plan in self.pools:
            self._join_pool(client, plan)
        self.joined = True
        self.refreshed = time.monotonic()
        logs.event(log, "joined", cluster=self.cluster, pools=",".join(p.name for p in self.pools))

    def _join_pool(self, client: api_client.Client, plan: discovery.PoolPlan) -> None:
        name = discovery.object_name(self.cluster, plan.name)
        spec = {**plan.spec, "cluster": self.cluster}
        labels = {CLUSTER_LABEL: self.cluster}
        pool = {
            "apiVersion": API_VERSION,
            "kind": "Pool",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }
        _upsert(client, "Pool", name, {"metadata": {"labels": labels}, "spec": spec}, pool)
        ready = {"status": {"readyNodes": int(spec.get("nodeCount", 1))}}
        client.patch("Pool", name, ready, subresource="status")

    def heartbeat(self, client: api_client.Client) -> None:
        """Report in; joins again if the Cluster was deleted meanwhile."""
        if not self.joined:
            self.join(client)
        try:
            self._beat(client)
        except api_client.NotFound:
            self.join(client)
            self._beat(client)

    def _beat(self, client: api_client.Client) -> Object:
        status = {
            "lastHeartbeatTime": self.clock().isoformat(),
            "agentVersion": inferplane.__version__,
        }
        if self.runtime_version:
            status["runtimeVersion"] = self.runtime_version
        return client.patch("Cluster", self.cluster, {"status": status}, subresource="status")

    def run(
        self,
        make_client: Callable[[], api_client.Client],
        stop: threading.Event,
        interval: float,
        settled: threading.Event,
    ) -> None:
        """Heartbeat every `interval` seconds until `stop`; failures are logged and retried.

        The first heartbeat waits for `settled`: the agent has seen the full list of its
        replicas and stopped the engines it should no longer run, so a returning agent
        reports itself Ready only once what it runs is what the control plane thinks.
        """
        while not settled.wait(0.1):
            if stop.is_set():
                return
        reachable = True
        with make_client() as client:
            while True:
                try:
                    self.heartbeat(client)
                    self._maybe_refresh(client)
                    if not reachable:
                        logs.event(log, "control plane reachable again", cluster=self.cluster)
                    reachable = True
                except api_client.ConnectionFailed as exc:
                    if reachable:
                        self._warn("control plane unreachable", exc.detail)
                    reachable = False
                except api_client.ClientError as exc:
                    self._warn("heartbeat refused", exc)
                if stop.wait(interval):
                    return

    def _maybe_refresh(self, client: api_client.Client) -> None:
        if self.rediscover is None or time.monotonic() - self.refreshed < self.refresh_seconds:
            return
        self.refreshed = time.monotonic()
        try:
            plans = self.rediscover()
        except Exception as exc:  # a scheduler briefly unreachable: keep the pools it had
            self._warn("pool discovery failed", exc)
            return
        if plans != self.pools:
            self.refresh(client, plans)

    def refresh(self, client: api_client.Client, plans: list[discovery.PoolPlan]) -> None:
        """Report pools discovered anew: new and changed ones written, and those whose nodes
        are all gone kept (their replicas' allocations are the scheduler's) with readyNodes 0."""
        known = {p.name: p for p in self.pools}
        for plan in plans:
            if known.get(plan.name) != plan:
                self._join_pool(client, plan)
        names = {p.name for p in plans}
        for gone in [name for name in known if name not in names]:
            pool = discovery.object_name(self.cluster, gone)
            client.patch("Pool", pool, {"status": {"readyNodes": 0}}, subresource="status")
            logs.event(log, "pool gone", level=logging.WARNING, cluster=self.cluster, pool=pool)
        logs.event(log, "pools rediscovered", cluster=self.cluster,
                   pools=",".join(p.name for p in plans))  # fmt: skip
        self.pools = plans

    def _warn(self, event: str, error: object) -> None:
        logs.event(log, event, level=logging.WARNING, cluster=self.cluster, error=error)


def _upsert(client: api_client.Client, kind: str, name: str, patch: Object, new: Object) -> Object:
    """Merge-patch the object; create it when it does not exist yet."""
    try:
        return client.patch(kind, name, patch)
    except api_client.NotFound:
        pass
    try:
        return client.create(new)
    except api_client.AlreadyExists:
        return client.patch(kind, name, patch)
