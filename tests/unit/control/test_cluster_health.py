"""Cluster health on a hand-moved clock: NotReady after missed heartbeats, eviction after
the grace period, and a full grace for every cluster when the controller (re)starts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferplane import store as store_pkg
from inferplane.api import fleet, wellknown
from inferplane.control.controllers import clusters
from inferplane.control.runtime.controller import Key
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.objects import Objects
from tests.unit.control import stored

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def cluster(phase: str = "Ready", *, heartbeat: datetime | None = T0) -> fleet.Cluster:
    status: dict[str, Any] = {"phase": phase}
    if heartbeat is not None:
        status["lastHeartbeatTime"] = heartbeat.isoformat()
    return fleet.Cluster.model_validate(
        {
            "metadata": {"name": "a"},
            "spec": {"heartbeatGraceSeconds": 10, "evictionGraceSeconds": 60},
            "status": status,
        }
    )


def test_a_fresh_heartbeat_keeps_the_cluster_ready_until_its_grace_runs_out() -> None:
    health = clusters.assess(cluster(), heard=T0, now=T0 + timedelta(seconds=4))
    assert health.status.phase == "Ready"
    assert health.status.condition("Ready").status == "True"  # type: ignore[union-attr]
    assert health.recheck_after == pytest.approx(6, abs=0.1)
    stale = clusters.assess(cluster(), heard=T0, now=T0 + timedelta(seconds=11))
    assert stale.status.phase == "NotReady"
    assert stale.event is not None and stale.event[:2] == ("Warning", "ClusterNotReady")


def test_cordon_shows_in_the_phase() -> None:
    cordoned = cluster().model_copy(update={"spec": fleet.ClusterSpec(cordoned=True)})
    assert clusters.assess(cordoned, heard=T0, now=T0).status.phase == "Cordoned"


def test_a_cluster_that_never_joined_stays_pending() -> None:
    health = clusters.assess(cluster("Pending", heartbeat=None), heard=None, now=T0)
    assert health.status.phase == "Pending" and health.event is None


def test_eviction_waits_for_the_grace_and_for_the_controller_to_have_watched() -> None:
    lost = clusters.assess(cluster(), heard=T0, now=T0 + timedelta(seconds=11)).status
    gone = cluster().model_copy(update={"status": lost})
    at = clusters.eviction_time(gone, watched_since=T0)
    assert at == T0 + timedelta(seconds=71)
    restarted = T0 + timedelta(hours=1)
    assert clusters.eviction_time(gone, watched_since=restarted) == restarted + timedelta(
        seconds=60
    )
    assert clusters.eviction_time(cluster(), watched_since=T0) is None


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
    (condition,) = [c for c in lost["conditions"] if c["type"] == clusters.REPLICA_CONDITION]
    assert (condition["status"], condition["reason"]) == ("False", "ClusterNotReady")
    version = store.get("Replica", "t", "chat-abcde")["metadata"]["resourceVersion"]
    reconcile()
    assert store.get("Replica", "t", "chat-abcde")["metadata"]["resourceVersion"] == version, (
        "marked once, not on every pass"
    )

    _heartbeat(store, clock.now)  # the agent is back: it heartbeats (phase Ready) again
    back = reconcile()
    assert store.get("Cluster", "", "a")["status"]["phase"] == "Ready"
    assert all(c["type"] != clusters.REPLICA_CONDITION for c in back.get("conditions", []))


def _heartbeat(store: store_pkg.Store, when: datetime) -> None:
    """What an agent's heartbeat writes: phase Ready and the time."""
    cluster = store.get("Cluster", "", "a")
    status = {**(cluster.get("status") or {}), "phase": "Ready"}
    store.update({**cluster, "status": {**status, "lastHeartbeatTime": when.isoformat()}})
