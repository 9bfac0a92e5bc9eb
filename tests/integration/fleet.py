"""Helpers the controller tests share: a test's own fleet, waiting, and reading replicas."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from inferplane import client as api_client
from inferplane.api import wellknown
from tests.integration.fake_agent import FakeAgent
from tests.integration.manifests import deployment, model
from tests.support.control import ControlProcess

T = TypeVar("T")
WAIT_SECONDS = 60.0


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float = WAIT_SECONDS) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` (no timing asserted)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


def replicas_of(client: api_client.Client, namespace: str, name: str) -> list[dict[str, Any]]:
    selector = f"{wellknown.DEPLOYMENT_LABEL}={name}"
    return client.list("Replica", namespace=namespace, label_selector=selector).items


def live(replicas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in replicas if not r["metadata"].get("deletionTimestamp")]


def phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_]
    return found[0] if found else None


def events_for(client: api_client.Client, namespace: str, name: str, reason: str) -> list[Any]:
    selector = f"spec.involvedObject.name={name},spec.reason={reason}"
    return client.list("Event", namespace=namespace, field_selector=selector).items


def all_ready(
    client: api_client.Client, namespace: str, name: str, count: int
) -> list[dict[str, Any]] | None:
    """The deployment's replicas when exactly `count` exist and all are Ready, else None."""
    found = replicas_of(client, namespace, name)
    if len(found) == count and all(phase(r) == "Ready" for r in live(found)):
        return found
    return None


def workload(namespace: str, name: str = "chat", *, replicas: int = 1, **spec: Any) -> Any:
    """A Deployment of model tiny pinned to the test's clusters (label test=<namespace>)."""
    spec.setdefault("placement", {"clusterSelector": {"matchLabels": {"test": namespace}}})
    spec.setdefault("resources", {"devices": [{"name": "gpu", "count": 1}]})
    return deployment(name, namespace, model="tiny", replicas=replicas, **spec)


@contextmanager
def fleet(
    control: ControlProcess, namespace: str, *agents: dict[str, Any]
) -> Iterator[list[FakeAgent]]:
    """Start FAKE AGENTs (kwargs of FakeAgent, cluster names prefixed with the namespace),
    create model tiny in the namespace; at the end delete the namespace's deployments, wait
    for their replicas to go, stop the agents and delete their clusters and pools."""
    started: list[FakeAgent] = []
    with api_client.Client(control.url, control.admin_token, namespace=namespace) as client:
        client.create(model("tiny", namespace))
        try:
            for options in agents:
                labels = {"test": namespace, **options.pop("labels", {})}
                cluster = f"{namespace}-{options.pop('cluster')}"
                started.append(FakeAgent(control, cluster, labels=labels, **options).start())
            yield started
        finally:
            _teardown(client, namespace, started)


def _teardown(client: api_client.Client, namespace: str, agents: list[FakeAgent]) -> None:
    for obj in client.list("Deployment", namespace=namespace).items:
        client.delete("Deployment", obj["metadata"]["name"], namespace=namespace)
    wait_for("the replicas to go", lambda: not client.list("Replica", namespace=namespace).items)
    for agent in agents:
        agent.stop()
    for agent in agents:
        for pool in agent.pools:
            client.delete("Pool", f"{agent.cluster}-{pool['name']}")
        client.delete("Cluster", agent.cluster)


class Load:
    """Posts `total` concurrency spread over the deployment's Ready replicas every 0.5 s, to
    the metrics channel, as each replica's cluster's agent would."""

    def __init__(
        self, client: api_client.Client, cluster: str, namespace: str, name: str = "chat"
    ) -> None:
        self.client, self.cluster, self.namespace, self.name = client, cluster, namespace, name
        self.total = 0.0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.5):
            ready = [r for r in live(replicas_of(self.client, self.namespace, self.name))]
            ready = [r for r in ready if phase(r) == "Ready"]
            if not ready:
                continue
            each = self.total / len(ready)
            by_cluster: dict[str, list[dict[str, Any]]] = {}
            for r in ready:
                entry = {
                    "namespace": self.namespace,
                    "name": r["metadata"]["name"],
                    "running": each,
                }
                by_cluster.setdefault(r["spec"].get("cluster") or self.cluster, []).append(entry)
            for cluster, entries in by_cluster.items():  # each agent reports its own
                self.client.report_load({"cluster": cluster, "replicas": entries})

    @contextmanager
    def running(self) -> Iterator[Load]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
