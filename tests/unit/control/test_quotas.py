"""Namespace Quotas on replicas and devices: the room they leave, and the deployment and quota
controllers that keep to it, on a real SQLite store reconciled by hand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from inferplane import store as store_pkg
from inferplane.api import apikeys, deployments, wellknown
from inferplane.control.controllers import deployments as deployment_controller
from inferplane.control.controllers import quotas
from inferplane.control.runtime.controller import Key, Reconciler
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.objects import Objects
from tests.unit.control import stored

NS = "team"


def quota(name: str, **spec: Any) -> apikeys.Quota:
    return apikeys.Quota.model_validate({"metadata": {"name": name, "namespace": NS}, "spec": spec})


def test_devices_are_per_node_times_nodes() -> None:
    resources = deployments.ResourcesSpec.model_validate(
        {"devices": [{"name": "gpu", "count": 2}, {"name": "nic", "count": 1}], "nodes": 2}
    )
    assert quotas.devices_of(resources) == 6


def test_the_tightest_limit_of_every_quota_holds_and_is_named() -> None:
    limits = [quota("a", maxReplicas=10), quota("b", maxDevices=9)]
    room = quotas.room(limits, quotas.Usage(replicas=4, devices=4), devices_each=2, wanted=5)
    assert room.allowed == 2
    assert room.held_by is not None
    assert room.held_by.startswith("quota team/b: maxDevices is 9")


def test_no_limit_hit_holds_nothing() -> None:
    room = quotas.room([quota("a", maxReplicas=10)], quotas.Usage(3, 0), devices_each=1, wanted=7)
    assert room == quotas.Room(7, None)


def test_a_quota_already_exceeded_admits_none() -> None:
    room = quotas.room([quota("a", maxReplicas=2)], quotas.Usage(5, 0), devices_each=0, wanted=1)
    assert room.allowed == 0 and room.held_by is not None and "maxReplicas is 2" in room.held_by


def test_replicas_moving_off_their_cluster_do_not_count() -> None:
    def replica(move: str | None) -> dict[str, Any]:
        annotations = {wellknown.MOVE_ANNOTATION: move} if move else {}
        resources = {"devices": [{"name": "gpu", "count": 2}]}
        return {"metadata": {"annotations": annotations}, "spec": {"resources": resources}}

    listed = [replica(None), replica(wellknown.MOVE_EVICT), replica(wellknown.MOVE_PLANNED)]
    assert quotas.usage_of(listed) == quotas.Usage(replicas=1, devices=2)


# -- the controllers on a real store ------------------------------------------------------------


def _deployment(store: store_pkg.Store, replicas: int) -> None:
    stored.create(
        store,
        {
            "kind": "Model",
            "metadata": {"name": "m", "namespace": NS},
            "spec": {"versions": [{"name": "v1", "source": "file:///m"}]},
        },
    )
    stored.create(
        store,
        {
            "kind": "Deployment",
            "metadata": {"name": "chat", "namespace": NS},
            "spec": {
                "model": "m",
                "replicas": replicas,
                "resources": {"devices": [{"name": "gpu", "count": 2}]},
            },
        },
    )


def _reconcile(controller: Reconciler, key: Key) -> float | None:
    return asyncio.run(controller.reconcile(key)).requeue_after


def _woken_by(controller: Reconciler, obj: dict[str, Any]) -> list[Key]:
    (watch,) = [w for w in controller.watches if w.kind == obj["kind"]]

    async def mapped() -> list[Key]:
        return await watch.keys(obj)

    return asyncio.run(mapped())


def _replicas(store: store_pkg.Store) -> int:
    return len(store.list("Replica", NS)[0])


def _condition(store: store_pkg.Store) -> dict[str, Any] | None:
    status = store.get("Deployment", NS, "chat").get("status") or {}
    found = [c for c in status.get("conditions", []) if c["type"] == "QuotaExceeded"]
    return found[0] if found else None


def _controller(store: store_pkg.Store) -> deployment_controller.DeploymentController:
    objects = Objects(store, lambda: None)
    return deployment_controller.DeploymentController(
        objects, EventRecorder(store, component="test")
    )


def test_one_pass_creates_a_bounded_burst_and_asks_to_come_back(store: store_pkg.Store) -> None:
    _deployment(store, replicas=40)
    controller = _controller(store)
    burst = deployment_controller.CREATE_BURST
    assert _reconcile(controller, Key(NS, "chat")) == deployment_controller.CREATE_PAUSE_SECONDS
    assert _replicas(store) == burst
    _reconcile(controller, Key(NS, "chat"))
    assert _replicas(store) == 2 * burst
    assert _reconcile(controller, Key(NS, "chat")) is None, "the rest fit in one pass"
    assert _replicas(store) == 40


def test_a_quota_holds_replicas_back_until_it_is_raised(store: store_pkg.Store) -> None:
    _deployment(store, replicas=6)
    caps = {"maxReplicas": 5, "maxDevices": 6}
    stored.create(
        store, {"kind": "Quota", "metadata": {"name": "caps", "namespace": NS}, "spec": caps}
    )
    controller = _controller(store)
    key = Key(NS, "chat")

    assert _reconcile(controller, key) is None, "held: a Quota change wakes it, not a timer"
    assert _replicas(store) == 3, "6 devices at 2 a replica"
    held = _condition(store)
    assert held is not None and held["status"] == "True"
    assert held["message"].startswith("quota team/caps: maxDevices is 6")
    (event,) = [e for e in store.list("Event", NS)[0] if e["spec"]["reason"] == "QuotaExceeded"]
    assert event["spec"]["type"] == "Warning"

    quota_controller = quotas.QuotaController(Objects(store, lambda: None))
    _reconcile(quota_controller, Key(NS, "caps"))
    status = store.get("Quota", NS, "caps")["status"]
    assert (status["replicas"], status["devices"]) == (3, 6)

    raised = store.get("Quota", NS, "caps")
    store.update({**raised, "spec": {"maxReplicas": 5, "maxDevices": 100}})
    assert _woken_by(controller, raised) == [key], "a Quota change wakes what it held"
    _reconcile(controller, key)
    assert _replicas(store) == 5, "now maxReplicas holds"
    assert "maxReplicas is 5" in (_condition(store) or {})["message"]

    store.update({**store.get("Quota", NS, "caps"), "spec": {}})
    _reconcile(controller, key)
    assert _replicas(store) == 6
    assert _condition(store) is None, "nothing held: the condition goes"
    _reconcile(quota_controller, Key(NS, "caps"))
    assert store.get("Quota", NS, "caps")["status"]["replicas"] == 6


class FailingSecond(Objects):
    """Objects whose second create fails, as a store that has started refusing writes."""

    def __init__(self, store: store_pkg.Store) -> None:
        super().__init__(store, lambda: None)
        self.creates = 0

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "Replica":
            self.creates += 1
            if self.creates == 2:
                raise OSError("disk full")
        return await super().create(obj)


def test_slow_start_stops_at_the_first_batch_that_fails(store: store_pkg.Store) -> None:
    _deployment(store, replicas=40)
    objects = FailingSecond(store)
    controller = deployment_controller.DeploymentController(
        objects, EventRecorder(store, component="test")
    )
    with pytest.raises(OSError, match="disk full"):
        _reconcile(controller, Key(NS, "chat"))
    assert objects.creates == 3, "batches of 1 and 2, then no more"
    assert _replicas(store) == 2
