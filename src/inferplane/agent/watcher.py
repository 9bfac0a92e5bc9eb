"""The agent's copy of the Replicas bound to its cluster, kept by a watch that never gives up.

The copy is what the agent reconciles from; when the control plane is unreachable it stays
as it last was, so replicas keep running (static stability). `synced` turns true at the first
full list: until then the agent does not know which replicas are gone, and stops none.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from typing import Any

from inferplane import client as api_client
from inferplane import informer, logs
from inferplane.backoff import Backoff

log = logging.getLogger(__name__)

Object = dict[str, Any]
RETRY = Backoff(base=1.0, cap=30.0)
"""Delay before following again after the watch failed in a way it does not retry itself."""


def key_of(obj: Object) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace') or ''}/{meta['name']}"


class ReplicaCache:
    """Replicas by namespace/name, fed by watch events; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, Object] = {}
        self._synced = False
        self.changed = threading.Event()
        """Set on every change, so the agent's loop wakes at once."""

    def apply(self, event: api_client.WatchEvent) -> None:
        with self._lock:
            if event.type == "RESYNC":
                items = event.object.get("items") or []
                self._objects = {key_of(obj): obj for obj in items}
                self._synced = True
            elif event.type in ("ADDED", "MODIFIED"):
                self._objects[key_of(event.object)] = event.object
            elif event.type == "DELETED":
                self._objects.pop(key_of(event.object), None)
        self.changed.set()

    def snapshot(self) -> tuple[dict[str, Object], bool]:
        """A deep copy of the replicas, and whether a full list has been seen."""
        with self._lock:
            return copy.deepcopy(self._objects), self._synced


def follow_replicas(
    make_client: Callable[[], api_client.Client],
    cluster: str,
    cache: ReplicaCache,
    stop: threading.Event,
) -> None:
    """Feed `cache` from a watch of the Replicas bound to `cluster`, until `stop` is set."""
    failures = 0
    while not stop.is_set():
        try:
            with make_client() as client:
                selector = f"spec.cluster={cluster}"
                for event in informer.follow(client, "Replica", field_selector=selector):
                    failures = 0
                    cache.apply(event)
                    if stop.is_set():
                        return
        except api_client.ClientError as exc:
            failures += 1
            logs.event(
                log, "replica watch failed", level=logging.WARNING, cluster=cluster, error=exc
            )
        stop.wait(RETRY.delay(failures))
