"""The controller runtime over a real SQLite store: level-triggered, failure-isolated."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from inferplane import store as store_pkg
from inferplane.backoff import Backoff
from inferplane.control.metrics import Metrics
from inferplane.control.runtime.controller import ControllerRunner, Key, Result, Watch
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.workqueue import WorkQueue
from inferplane.store.watch import WatchHub


def model(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": "t"},
        "spec": spec,
    }


class Recording:
    """Reconciles Models; fails forever on 'bad'; maps a Service to the model it names."""

    name = "recording"
    kind = "Model"

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.watches = [Watch("Service", self._model_of)]

    async def _model_of(self, service: dict[str, Any]) -> list[Key]:
        return [Key("t", service["spec"]["model"])]

    async def reconcile(self, key: Key) -> Result:
        self.calls[key.name] += 1
        if key.name == "bad":
            raise RuntimeError("boom")
        return Result()


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def test_one_failing_object_never_stalls_the_others(tmp_path: Path) -> None:
    store = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    for name in ("bad", "good"):
        store.create(model(name))

    async def scenario() -> Recording:
        hub = WatchHub(store, poll_interval=0.01)
        await hub.start()
        reconciler = Recording()
        queue: WorkQueue[Key] = WorkQueue(backoff=Backoff(base=0.001, cap=0.01))
        runner = ControllerRunner(reconciler, store, hub, Metrics(), queue=queue)
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: reconciler.calls["good"] == 1 and reconciler.calls["bad"] >= 3)
        store.create(model("late"))
        hub.notify()
        await wait_for(lambda: reconciler.calls["late"] == 1)
        store.create({**model("svc"), "kind": "Service", "spec": {"model": "good"}})
        hub.notify()
        await wait_for(lambda: reconciler.calls["good"] == 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await hub.stop()
        return reconciler

    reconciler = asyncio.run(scenario())
    store.close()
    assert reconciler.calls["bad"] >= 3, "a failing key is retried with backoff"
    assert reconciler.calls["late"] == 1, "a new object is reconciled from the watch"


def test_repeated_events_are_counted_on_one_object(tmp_path: Path) -> None:
    store = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    deployment = store.create(model("chat"))
    recorder = EventRecorder(store, component="test")
    for _ in range(3):
        recorder.record(deployment, "Warning", "ModelNotFound", "no model")
    recorder.record(deployment, "Normal", "ModelResolved", "found it")
    events, _ = store.list("Event", "t")
    store.close()
    by_reason = {e["spec"]["reason"]: e["spec"] for e in events}
    assert by_reason["ModelNotFound"]["count"] == 3
    assert by_reason["ModelResolved"]["count"] == 1
    assert by_reason["ModelNotFound"]["involvedObject"]["uid"] == deployment["metadata"]["uid"]
    first = by_reason["ModelNotFound"]["firstTimestamp"]
    assert by_reason["ModelNotFound"]["lastTimestamp"] >= first
