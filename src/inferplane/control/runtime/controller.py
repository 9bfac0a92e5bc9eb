"""Level-triggered reconcile loops fed by watches.

A controller names the kind it reconciles and, for each kind it watches, how an object of
that kind maps to the keys to reconcile. The runner lists, watches from the list's version,
queues keys (de-duplicated), and calls `reconcile(key)` from a few workers. A failing key is
retried with exponential backoff and never stalls the others; a periodic resync re-queues
every key so a missed edge can only delay convergence, never prevent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from inferplane import logs
from inferplane.control.metrics import Metrics
from inferplane.control.runtime.workqueue import WorkQueue
from inferplane.store import base as store_base
from inferplane.store.watch import WatchHub

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Key:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return Key(meta.get("namespace") or "", meta["name"])


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing, or another look after `requeue_after` s."""

    requeue_after: float | None = None


class RequeueError(Exception):
    """A temporary failure: try again after `delay` seconds without counting as an error."""

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class Watch:
    kind: str
    keys: Callable[[dict[str, Any]], Awaitable[list[Key]]]
    """Map a changed object of `kind` to the keys of the reconciled kind it affects. A deleted
    object comes as its last state with metadata.deletionTimestamp set (to "deleted" when it
    was removed at once, having no finalizers), so a mapping can tell that it is gone."""


class Reconciler(Protocol):
    name: str
    kind: str
    """The kind reconciled; its own changes map to its own key."""
    watches: list[Watch]

    async def reconcile(self, key: Key) -> Result: ...


@dataclass
class ControllerRunner:
    reconciler: Reconciler
    store: store_base.Store
    hub: WatchHub
    metrics: Metrics
    workers: int = 2
    resync_seconds: float = 300.0
    queue: WorkQueue[Key] = field(default_factory=WorkQueue)

    async def run(self) -> None:
        """Run until cancelled."""
        name = self.reconciler.name
        items, version = await asyncio.to_thread(self.store.list, self.reconciler.kind, None)
        for obj in items:
            self.queue.add(key_of(obj))
        tasks = [asyncio.create_task(self._feed(version), name=f"{name}-watch")]
        tasks.append(asyncio.create_task(self._resync(), name=f"{name}-resync"))
        tasks += [
            asyncio.create_task(self._work(), name=f"{name}-worker-{i}")
            for i in range(self.workers)
        ]
        logs.event(log, "controller started", controller=name, objects=len(items))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _feed(self, version: int) -> None:
        kinds = {self.reconciler.kind, *(w.kind for w in self.reconciler.watches)}
        while True:
            try:
                async for event in self.hub.subscribe(
                    kind=None, namespace=None, resource_version=version
                ):
                    version = event.resource_version
                    if event.object.get("kind") in kinds:
                        await self._enqueue(_as_seen(event))
                return  # the hub stopped: the control plane is shutting down
            except store_base.GoneError:
                # Fell behind compaction: relist (level-triggered, so a relist loses nothing).
                items, version = await asyncio.to_thread(
                    self.store.list, self.reconciler.kind, None
                )
                for obj in items:
                    self.queue.add(key_of(obj))

    async def _enqueue(self, obj: dict[str, Any]) -> None:
        if obj.get("kind") == self.reconciler.kind:
            self.queue.add(key_of(obj))
        for watch in self.reconciler.watches:
            if obj.get("kind") == watch.kind:
                try:
                    for key in await watch.keys(obj):
                        self.queue.add(key)
                except Exception:
                    log.exception(
                        "watch mapping failed", extra={"controller": self.reconciler.name}
                    )
        self.metrics.queue_depth.labels(self.reconciler.name).set(len(self.queue))

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            items, _ = await asyncio.to_thread(self.store.list, self.reconciler.kind, None)
            for obj in items:
                self.queue.add(key_of(obj))

    async def _work(self) -> None:
        while (key := await self.queue.get()) is not None:
            try:
                await self._reconcile_one(key)
            finally:
                self.queue.done(key)
                self.metrics.queue_depth.labels(self.reconciler.name).set(len(self.queue))

    async def _reconcile_one(self, key: Key) -> None:
        name = self.reconciler.name
        try:
            result = await self.reconciler.reconcile(key)
        except RequeueError as exc:
            self.metrics.reconciles.labels(name, "requeue").inc()
            logs.event(log, "reconcile requeued", controller=name, object=str(key), reason=str(exc))
            self.queue.add_after(key, exc.delay)
            return
        except store_base.ConflictError:
            self.metrics.reconciles.labels(name, "requeue").inc()
            self.queue.add_rate_limited(key)
            return
        except Exception as exc:  # the loop must never halt on one bad object
            self.metrics.reconciles.labels(name, "error").inc()
            delay = self.queue.add_rate_limited(key)
            logs.event(
                log,
                "reconcile failed",
                level=logging.ERROR,
                controller=name,
                object=str(key),
                error=repr(exc),
                retry_in=f"{delay:.2f}s",
            )
            return
        self.metrics.reconciles.labels(name, "ok").inc()
        self.queue.forget(key)
        if result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)


def _as_seen(event: store_base.WatchEvent) -> dict[str, Any]:
    """The event's object; for a DELETED one, marked deleting if it was not already."""
    obj = event.object
    if event.type != "DELETED" or obj.get("metadata", {}).get("deletionTimestamp"):
        return obj
    return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": "deleted"}}
