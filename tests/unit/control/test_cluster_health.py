"""The cluster controller on a hand-moved clock: NotReady after missed heartbeats, eviction
after the grace period, replicas Unknown meanwhile, and what a restart of the controller
counts. The rules themselves are tested in tests/unit/policy/test_clusters.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferplane import store as store_pkg
from inferplane.api import wellknown
from inferplane.control.controllers import clusters
from inferplane.control.runtime.controller import Key
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.objects import Objects
from inferplane.policy import clusters as liveness
from tests.unit.control import stored

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_the_controller_marks_not_ready_then_evicts_on_its_clock(store: store_pkg.Store) -> None:
    clock = Clock()
    _joined(store, eviction_grace=60)
    owner = stored.create(
        store,
        {
            "kind": "Deployment",
            "metadata": {"name": "chat", "namespace": "t"},
            "spec": {"model": "m"},
        },
    )
    stored.create(
        store,
        {
            "kind": "Replica",
            "metadata": {
                "name": "chat-abcde",
                "namespace": "t",
                "ownerReferences": [
                    {"kind": "Deployment", "name": "chat", "uid": owner["metadata"]["uid"]}
                ],
            },
            "spec": {
                "deployment": "chat",
                "model": {"name": "m", "version": "v1", "source": "file:///m"},
                "cluster": "a",
                "pool": "a-gpu",
            },
        },
    )
    controller = clusters.ClusterController(
        Objects(store, lambda: None), EventRecorder(store, component="test"), clock=clock
    )

    def reconcile() -> float | None:
        return asyncio.run(controller.reconcile(Key("", "a"))).requeue_after

    assert reconcile() == pytest.approx(10, abs=0.1)
    clock.advance(11)
    reconcile()
    assert store.get("Cluster", "", "a")["status"]["phase"] == "NotReady"
    clock.advance(30)
    assert reconcile() == pytest.approx(30, abs=0.1), "recheck when the eviction grace ends"
    assert _move(store) is None
    clock.advance(31)
    reconcile()
    assert _move(store) == wellknown.MOVE_EVICT
    reasons = {e["spec"]["reason"] for e in store.list("Event", None)[0]}
    assert {"ClusterNotReady", "EvictingReplicas", "Evicted"} <= reasons


def _joined(store: store_pkg.Store, *, eviction_grace: float) -> None:
    """Cluster a, joined and heartbeating at T0, NotReady 10 s after its last heartbeat."""
    spec = {"heartbeatGraceSeconds": 10, "evictionGraceSeconds": eviction_grace}
    stored.create(store, {"kind": "Cluster", "metadata": {"name": "a"}, "spec": spec})
    _heartbeat(store, T0)


def _move(store: store_pkg.Store) -> str | None:
    replica = store.get("Replica", "t", "chat-abcde")
    return (replica["metadata"].get("annotations") or {}).get(wellknown.MOVE_ANNOTATION)


def test_replicas_of_a_not_ready_cluster_are_unknown_until_it_is_back(
    store: store_pkg.Store,
) -> None:
    clock = Clock()
    _joined(store, eviction_grace=600)
    replica = stored.create(
        store,
        {
            "kind": "Replica",
            "metadata": {"name": "chat-abcde", "namespace": "t"},
            "spec": {
                "deployment": "chat",
                "model": {"name": "m", "version": "v1", "source": "file:///m"},
                "cluster": "a",
                "pool": "a-gpu",
            },
        },
    )
    store.update({**replica, "status": {"phase": "Ready", "url": "http://10.0.0.5:8001"}})
    controller = clusters.ClusterController(
        Objects(store, lambda: None), EventRecorder(store, component="test"), clock=clock
    )

    def reconcile() -> dict[str, Any]:
        asyncio.run(controller.reconcile(Key("", "a")))
        status: dict[str, Any] = store.get("Replica", "t", "chat-abcde")["status"]
        return status

    assert reconcile()["phase"] == "Ready"
    clock.advance(11)
    lost = reconcile()
    assert lost["phase"] == "Unknown"
    assert lost["url"] == "http://10.0.0.5:8001", "kept: the agent may come back to it"
    (condition,) = [c for c in lost["conditions"] if c["type"] == liveness.REPLICA_CONDITION]
    assert (condition["status"], condition["reason"]) == ("False", "ClusterNotReady")
    version = store.get("Replica", "t", "chat-abcde")["metadata"]["resourceVersion"]
    reconcile()
    assert store.get("Replica", "t", "chat-abcde")["metadata"]["resourceVersion"] == version, (
        "marked once, not on every pass"
    )

    _heartbeat(store, clock.now)  # the agent is back: it heartbeats again
    back = reconcile()
    assert store.get("Cluster", "", "a")["status"]["phase"] == "Ready"
    assert all(c["type"] != liveness.REPLICA_CONDITION for c in back.get("conditions", []))


def _heartbeat(store: store_pkg.Store, when: datetime) -> None:
    """What an agent's heartbeat writes: the time (the phase is the controller's)."""
    cluster = store.get("Cluster", "", "a")
    status = {**(cluster.get("status") or {}), "lastHeartbeatTime": when.isoformat()}
    store.update({**cluster, "status": status})


def test_a_cluster_not_ready_when_the_controller_starts_waits_for_a_new_heartbeat(
    store: store_pkg.Store,
) -> None:
    clock = Clock()
    _joined(store, eviction_grace=600)
    cluster = store.get("Cluster", "", "a")
    store.update({**cluster, "status": {**cluster["status"], "phase": "NotReady"}})

    def restarted() -> clusters.ClusterController:
        return clusters.ClusterController(
            Objects(store, lambda: None), EventRecorder(store, component="test"), clock=clock
        )

    controller = restarted()
    asyncio.run(controller.reconcile(Key("", "a")))
    assert store.get("Cluster", "", "a")["status"]["phase"] == "NotReady", (
        "the heartbeat it found is the one that went stale"
    )
    clock.advance(1)
    _heartbeat(store, clock.now)
    asyncio.run(controller.reconcile(Key("", "a")))
    assert store.get("Cluster", "", "a")["status"]["phase"] == "Ready"


def test_a_live_cluster_gets_a_full_grace_when_the_controller_starts(
    store: store_pkg.Store,
) -> None:
    clock = Clock()
    _joined(store, eviction_grace=600)
    clock.advance(3600)  # the control plane was down for an hour: no heartbeat got through
    controller = clusters.ClusterController(
        Objects(store, lambda: None), EventRecorder(store, component="test"), clock=clock
    )
    requeue = asyncio.run(controller.reconcile(Key("", "a"))).requeue_after
    assert store.get("Cluster", "", "a")["status"]["phase"] == "Ready"
    assert requeue == pytest.approx(10, abs=0.1)
