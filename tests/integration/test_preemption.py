"""Priorities and preemption against a real control plane, with FAKE AGENTs.

A high-priority deployment on a full plane evicts lower-priority replicas (never higher or
equal ones), says so with an Event on both deployments, and gets the freed devices; where
the fleet has room elsewhere the victims' replacements start there first
(make-before-break), where it has none the victims go first.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from inferplane import client as api_client
from inferplane.api import wellknown
from tests.integration.fake_agent import gpu_pool
from tests.integration.fleet import (
    condition,
    events_for,
    fleet,
    live,
    phase,
    replicas_of,
    wait_for,
)
from tests.integration.fleet import workload as deployment_of
from tests.integration.manifests import model
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration


def _client(control: ControlProcess, namespace: str) -> api_client.Client:
    return api_client.Client(control.url, control.admin_token, namespace=namespace)


def _ready(client: api_client.Client, namespace: str, name: str) -> list[dict[str, Any]]:
    return [r for r in live(replicas_of(client, namespace, name)) if phase(r) == "Ready"]


def _on(namespace: str, *zones: str) -> dict[str, Any]:
    expression = {"key": "zone", "operator": "In", "values": list(zones)}
    return {
        "clusterSelector": {"matchLabels": {"test": namespace}, "matchExpressions": [expression]}
    }


def test_a_high_priority_deployment_preempts_a_low_one_on_a_full_plane(
    control: ControlProcess, namespace: str
) -> None:
    agents = [{"cluster": "a", "pools": [gpu_pool("gpus", gpus=4)]}]
    with fleet(control, namespace, *agents), _client(control, namespace) as client:
        client.create(deployment_of(namespace, "batch", replicas=4, priority=0))
        wait_for("batch Ready on every GPU", lambda: len(_ready(client, namespace, "batch")) == 4)
        client.create(deployment_of(namespace, "lowest", replicas=1, priority=-10))

        def refused() -> bool:
            seen = [condition(r, "Scheduled") for r in replicas_of(client, namespace, "lowest")]
            found = seen[0] if seen else None
            return bool(found and found["reason"] == "Unschedulable")

        wait_for("the lower priority to stay Pending", refused)
        assert len(_ready(client, namespace, "batch")) == 4  # never the reverse

        client.create(deployment_of(namespace, "chat", replicas=2, priority=100))
        wait_for("chat Ready", lambda: len(_ready(client, namespace, "chat")) == 2)
        preempted = wait_for(
            "Preempted on batch", lambda: events_for(client, namespace, "batch", "Preempted")
        )
        preempting = events_for(client, namespace, "chat", "Preempting")
        assert len(preempted) == len(preempting) == 2
        assert all("priority 0" in e["spec"]["message"] for e in preempted)
        assert len(_ready(client, namespace, "batch")) == 2
        assert not events_for(client, namespace, "lowest", "Preempted")
        # batch's replacements wait for room, as Pending replicas, lower than chat's
        pending = [
            r for r in live(replicas_of(client, namespace, "batch")) if not r["spec"].get("pool")
        ]
        assert len(pending) == 2
        assert all(r["metadata"]["annotations"].get(wellknown.REPLACES_ANNOTATION) for r in pending)


def test_victims_are_replaced_elsewhere_before_they_go(
    control: ControlProcess, namespace: str
) -> None:
    slow = threading.Event()
    slow.set()

    def hold(replica: dict[str, Any]) -> bool:
        annotations = replica["metadata"].get("annotations") or {}
        return slow.is_set() and wellknown.REPLACES_ANNOTATION in annotations

    agents: list[dict[str, Any]] = [
        {"cluster": "a", "labels": {"zone": "a"}, "pools": [gpu_pool("gpus", gpus=2)]},
        {
            "cluster": "b",
            "labels": {"zone": "b"},
            "pools": [gpu_pool("gpus", gpus=2)],
            "hold": hold,
        },
    ]
    with fleet(control, namespace, *agents), _client(control, namespace) as client:
        client.create(
            deployment_of(namespace, "batch", replicas=2, placement=_on(namespace, "a", "b"))
        )
        first = wait_for(
            "batch Ready", lambda: len(_ready(client, namespace, "batch")) == 2 or None
        )
        assert first
        on_a = {r["spec"]["cluster"] for r in _ready(client, namespace, "batch")}
        assert on_a == {f"{namespace}-a"}  # binpack filled one cluster
        client.create(
            deployment_of(
                namespace,
                "chat",
                replicas=1,
                priority=100,
                placement=_on(namespace, "a"),
                resources={"devices": [{"name": "gpu", "count": 2}]},
            )
        )
        wait_for("Preempted", lambda: events_for(client, namespace, "batch", "Preempted"))

        def replacements() -> list[dict[str, Any]]:
            found = live(replicas_of(client, namespace, "batch"))
            return [
                r for r in found if wellknown.REPLACES_ANNOTATION in r["metadata"]["annotations"]
            ]

        wait_for(
            "replacements bound on b",
            lambda: len([r for r in replacements() if r["spec"].get("pool")]) == 2,
        )
        time.sleep(1.5)  # the replacements are held Starting: the victims must stay
        assert len(_ready(client, namespace, "batch")) == 2
        assert not _ready(client, namespace, "chat")
        slow.clear()
        wait_for("chat Ready", lambda: len(_ready(client, namespace, "chat")) == 1)
        serving = _ready(client, namespace, "batch")
        assert {r["spec"]["cluster"] for r in serving} == {f"{namespace}-b"}
        assert len(serving) == 2


def test_a_tenant_cannot_preempt_another_namespaces_replicas(
    control: ControlProcess, namespace: str
) -> None:
    """spec.priority is the tenant's to write: 1000 in one namespace evicts nothing in
    another."""
    other = f"{namespace}-other"
    agents = [{"cluster": "a", "pools": [gpu_pool("gpus", gpus=2)]}]
    with fleet(control, namespace, *agents), _client(control, namespace) as client:
        client.create(deployment_of(namespace, "batch", replicas=2, priority=-100))
        wait_for("batch Ready", lambda: len(_ready(client, namespace, "batch")) == 2)
        client.create(model("tiny", other))
        hostile = deployment_of(namespace, "grab", replicas=1, priority=1000)
        hostile["metadata"]["namespace"] = other
        client.create(hostile)

        def refused() -> bool:
            found = [condition(r, "Scheduled") for r in replicas_of(client, other, "grab")]
            return bool(found and found[0] and found[0]["reason"] == "Unschedulable")

        wait_for("the other tenant's replica to stay Pending", refused)
        assert len(_ready(client, namespace, "batch")) == 2
        assert not events_for(client, namespace, "batch", "Preempted")
        client.delete("Deployment", "grab", namespace=other)
        wait_for("grab gone", lambda: not client.list("Replica", namespace=other).items)
