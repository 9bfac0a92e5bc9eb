"""A FAKE AGENT for testing the controllers before the real agent exists.

It keeps the agent's side of the contract in docs/workload-planes.md over the public API and
nothing more: it joins by creating its Cluster and Pools, heartbeats by merge-patching the
Cluster's status, and for each Replica bound to its cluster walks the phases the real agent
reports (Scheduled → Starting → Ready with a fake URL; Draining once deleted, then removes
the agent finalizer; the phase it had again when the control plane marked it Unknown, as the
real agent resends a phase it finds changed). It runs no engine. `stop()` is a kill -9:
heartbeats and replica handling end at once and nothing is cleaned up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from inferplane import client as api_client
from inferplane.api import wellknown
from tests.support.control import ControlProcess

LOOP_SECONDS = 0.1


def gpu_pool(name: str, *, nodes: int = 1, gpus: int = 2, product: str = "A100") -> dict[str, Any]:
    """A pool spec (without cluster) of `nodes` nodes with `gpus` GPUs each."""
    return {
        "name": name,
        "nodeCount": nodes,
        "devicesPerNode": [
            {
                "name": "gpu",
                "count": gpus,
                "driver": "gpu.nvidia.com",
                "attributes": {"productName": product},
                "capacity": {"memory": "80Gi"},
            }
        ],
    }


@dataclass
class FakeAgent:
    """FAKE AGENT of one cluster: heartbeats and reports replica phases, runs nothing."""

    control: ControlProcess
    cluster: str
    labels: dict[str, str] = field(default_factory=dict)
    pools: list[dict[str, Any]] = field(default_factory=list)
    heartbeat_grace: float = 30.0
    eviction_grace: float = 120.0
    hold: Callable[[dict[str, Any]], bool] = lambda replica: False
    """While true for a Starting replica, it stays Starting (a slow engine)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _errors: list[BaseException] = field(default_factory=list)

    def client(self) -> api_client.Client:
        return api_client.Client(self.control.url, self.control.admin_token)

    def start(self) -> FakeAgent:
        with self.client() as client:
            self._join(client)
            self._heartbeat(client)
        self._thread = threading.Thread(target=self._run, name=f"fake-agent-{self.cluster}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Vanish as a killed agent does: no more heartbeats, replicas left as they are."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._errors:
            raise self._errors[0]

    def url_of(self, replica: str) -> str:
        return f"http://{replica}.{self.cluster}.fake:8000"

    def _join(self, client: api_client.Client) -> None:
        region = self.labels.get("region", "")
        client.apply(
            {
                "apiVersion": "inferplane.dev/v1",
                "kind": "Cluster",
                "metadata": {"name": self.cluster, "labels": self.labels},
                "spec": {
                    "region": region,
                    "heartbeatGraceSeconds": self.heartbeat_grace,
                    "evictionGraceSeconds": self.eviction_grace,
                },
            }
        )
        for pool in self.pools:
            spec = {k: v for k, v in pool.items() if k != "name"}
            client.apply(
                {
                    "apiVersion": "inferplane.dev/v1",
                    "kind": "Pool",
                    "metadata": {"name": f"{self.cluster}-{pool['name']}"},
                    "spec": {**spec, "cluster": self.cluster},
                }
            )

    def _run(self) -> None:
        try:
            with self.client() as client:
                while not self._stop.wait(LOOP_SECONDS):
                    self._heartbeat(client)
                    self._reconcile(client)
        except BaseException as exc:  # surfaced by stop(), in the test's thread
            if not self._stop.is_set():
                self._errors.append(exc)

    def _heartbeat(self, client: api_client.Client) -> None:
        # Facts only, as the real agent's heartbeat: the cluster controller sets the phase.
        status = {
            "lastHeartbeatTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "agentVersion": "fake",
        }
        client.patch("Cluster", self.cluster, {"status": status}, subresource="status")

    def _reconcile(self, client: api_client.Client) -> None:
        bound = client.list("Replica", field_selector=f"spec.cluster={self.cluster}").items
        for replica in bound:
            try:
                self._step(client, replica)
            except (api_client.Conflict, api_client.NotFound):
                continue  # changed under us: next round sees the new state

    def _step(self, client: api_client.Client, replica: dict[str, Any]) -> None:
        meta = replica["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        phase = (replica.get("status") or {}).get("phase")

        def report(status: dict[str, Any]) -> None:
            client.patch(
                "Replica", name, {"status": status}, namespace=namespace, subresource="status"
            )

        if meta.get("deletionTimestamp"):
            if phase != "Draining":
                report({"phase": "Draining"})
            elif wellknown.AGENT_STOP_FINALIZER in meta.get("finalizers", []):
                kept = [f for f in meta["finalizers"] if f != wellknown.AGENT_STOP_FINALIZER]
                patch = {
                    "metadata": {"finalizers": kept, "resourceVersion": meta["resourceVersion"]}
                }
                client.patch("Replica", name, patch, namespace=namespace)
        elif phase == "Scheduled":
            report({"phase": "Starting"})
        elif phase == "Starting" and not self.hold(replica):
            report({"phase": "Ready", "url": self.url_of(name)})
        elif phase == "Unknown":  # its engines all run: what it would have said, said again
            held = self.hold(replica)
            report({"phase": "Starting" if held else "Ready", "url": self.url_of(name)})
