"""The scheduling controller on a real SQLite store: two schedulers racing for one pool never
hand out a device twice, and a deleted replica's devices are released only once its agent
let go of it (or it has no agent)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from inferplane import store as store_pkg
from inferplane.api import validation, wellknown
from inferplane.backoff import Backoff
from inferplane.control.controllers import scheduling
from inferplane.control.metrics import Metrics
from inferplane.control.runtime.controller import ControllerRunner, Key
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.objects import Objects
from inferplane.store.watch import WatchHub

GPUS = 8
REPLICAS = 12


def _create(store: store_pkg.Store, doc: dict[str, Any]) -> dict[str, Any]:
    return store.create(
        validation.parse_object({"apiVersion": "inferplane.dev/v1", **doc}).to_dict()
    )


def _fleet(store: store_pkg.Store, *, phase: str = "Ready") -> None:
    cluster = _create(store, {"kind": "Cluster", "metadata": {"name": "a"}, "spec": {}})
    store.update({**cluster, "status": {"phase": phase}})
    group = {"name": "gpu", "count": GPUS // 2, "attributes": {"gpu.nvidia.com/productName": "A"}}
    pool_spec = {"cluster": "a", "nodeCount": 2, "devicesPerNode": [group]}
    _create(store, {"kind": "Pool", "metadata": {"name": "a-gpu"}, "spec": pool_spec})


def _replica(store: store_pkg.Store, name: str) -> dict[str, Any]:
    return _create(
        store,
        {
            "kind": "Replica",
            "metadata": {
                "name": name,
                "namespace": "t",
                "finalizers": list(wellknown.REPLICA_FINALIZERS),
            },
            "spec": {
                "deployment": "chat",
                "model": {"name": "m", "version": "v1", "source": "file:///m"},
                "resources": {"devices": [{"name": "gpu", "count": 1}]},
            },
        },
    )


def _bound(store: store_pkg.Store) -> list[dict[str, Any]]:
    return [r for r in store.list("Replica", "t")[0] if r["spec"].get("pool")]


async def _until(predicate: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_two_racing_schedulers_never_overcommit_a_pool(tmp_path: Path) -> None:
    store = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    _fleet(store)
    for i in range(REPLICAS):
        _replica(store, f"chat-{i:05d}")

    async def scenario() -> None:
        hub = WatchHub(store, poll_interval=0.01)
        await hub.start()
        runners = []
        for _ in range(2):  # two control planes that both think they lead
            controller = scheduling.SchedulingController(
                Objects(store, hub.notify),
                EventRecorder(store, component="test"),
                retry=Backoff(base=0.05, cap=0.2),
            )
            runners.append(ControllerRunner(controller, store, hub, Metrics(), workers=3))
        tasks = [asyncio.create_task(r.run()) for r in runners]
        await _until(lambda: len(_bound(store)) == GPUS)
        await asyncio.sleep(0.3)  # let the refused ones try again: still nothing more fits
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hub.stop()

    asyncio.run(scenario())
    bound = _bound(store)
    pool = store.get("Pool", "", "a-gpu")
    store.close()
    claimed = Counter(
        (d["node"], i) for r in bound for d in r["spec"]["devices"] for i in d["indexes"]
    )
    held = Counter((n["index"], i) for n in pool["status"]["nodes"] for i in n["devices"]["gpu"])
    assert len(bound) == GPUS
    assert all(count == 1 for count in claimed.values()), "a device was given twice"
    assert claimed == held, "the pool's books match the bindings"
    assert all(r["status"]["phase"] == "Scheduled" for r in bound)


def test_a_deleted_replica_is_released_after_its_agent_let_go(tmp_path: Path) -> None:
    store = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    _fleet(store)
    _replica(store, "chat-aaaaa")
    controller = scheduling.SchedulingController(
        Objects(store, lambda: None), EventRecorder(store, component="test")
    )
    key = Key("t", "chat-aaaaa")

    def reconcile() -> None:
        asyncio.run(controller.reconcile(key))

    reconcile()
    assert store.get("Pool", "", "a-gpu")["status"]["nodes"], "bound and allocated"
    store.delete("Replica", "t", "chat-aaaaa")
    reconcile()
    held = store.get("Replica", "t", "chat-aaaaa")["metadata"]["finalizers"]
    assert held == list(wellknown.REPLICA_FINALIZERS), "the agent has not stopped the engine"
    assert store.get("Pool", "", "a-gpu")["status"]["nodes"], "devices still held"

    cluster = store.get("Cluster", "", "a")
    store.update({**cluster, "status": {"phase": "NotReady"}})
    reconcile()
    assert store.list("Replica", "t")[0] == [], "no live agent: finalizers removed"
    assert store.get("Pool", "", "a-gpu")["status"]["nodes"] == []
    reasons = [e["spec"]["reason"] for e in store.list("Event", "t")[0]]
    store.close()
    assert "AgentGone" in reasons and "Scheduled" in reasons
