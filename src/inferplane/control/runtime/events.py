"""Recording Events against objects: one Event per (object, reason, message), counted.

Repeats bump `count` and `lastTimestamp` instead of piling up objects, as Kubernetes does, so
`describe` shows "3 times in the last 5 minutes" rather than three lines.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from inferplane import logs
from inferplane.api import validation
from inferplane.api.meta import API_VERSION
from inferplane.store import base as store_base

log = logging.getLogger(__name__)
EventType = Literal["Normal", "Warning"]
FLEET_EVENTS_NAMESPACE = "inferplane-system"
CONFLICT_RETRIES = 5


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EventRecorder:
    """Writes Events straight to the store; called from controllers (in worker threads)."""

    def __init__(
        self,
        store: store_base.Store,
        *,
        component: str,
        on_write: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._component = component
        self._on_write = on_write or (lambda: None)

    def record(
        self,
        obj: dict[str, Any],
        type_: EventType,
        reason: str,
        message: str,
        *,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        meta = obj["metadata"]
        namespace = meta.get("namespace") or FLEET_EVENTS_NAMESPACE
        name = self._event_name(obj, reason, message)
        logs.event(
            log,
            "event",
            object=f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}".replace("//", "/"),
            type=type_,
            reason=reason,
            message=message,
        )
        for attempt in range(CONFLICT_RETRIES):
            try:
                written = self._write(obj, namespace, name, (type_, reason, message), now)
            except (store_base.AlreadyExistsError, store_base.ConflictError):
                # Another writer recorded the same event in between: count on its version.
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                continue
            self._on_write()
            return written
        raise AssertionError("unreachable")

    async def emit(
        self, obj: dict[str, Any], type_: EventType, reason: str, message: str, *, now: datetime
    ) -> dict[str, Any]:
        """`record` from async code: the store write runs in a worker thread."""
        return await asyncio.to_thread(self.record, obj, type_, reason, message, now=now)

    def _write(
        self,
        obj: dict[str, Any],
        namespace: str,
        name: str,
        what: tuple[EventType, str, str],
        now: datetime,
    ) -> dict[str, Any]:
        try:
            return self._bump(namespace, name, now)
        except store_base.NotFoundError:
            return self._store.create(self._new(obj, namespace, name, *what, now))

    def _bump(self, namespace: str, name: str, now: datetime) -> dict[str, Any]:
        event = self._store.get("Event", namespace, name)
        event["spec"]["count"] = int(event["spec"].get("count", 1)) + 1
        event["spec"]["lastTimestamp"] = _stamp(now)
        return self._store.update(event)

    @staticmethod
    def _event_name(obj: dict[str, Any], reason: str, message: str) -> str:
        meta = obj["metadata"]
        identity = f"{obj['kind']}/{meta.get('uid', meta['name'])}/{reason}/{message}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
        return f"{meta['name'][:52].rstrip('-')}-{digest}"

    def _new(
        self,
        obj: dict[str, Any],
        namespace: str,
        name: str,
        type_: EventType,
        reason: str,
        message: str,
        now: datetime,
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        involved = {"kind": obj["kind"], "name": meta["name"], "uid": meta.get("uid", "")}
        if meta.get("namespace"):
            involved["namespace"] = meta["namespace"]
        event = {
            "apiVersion": API_VERSION,
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "involvedObject": involved,
                "type": type_,
                "reason": reason,
                "message": message,
                "count": 1,
                "firstTimestamp": _stamp(now),
                "lastTimestamp": _stamp(now),
                "source": {"component": self._component},
            },
            "status": {},
        }
        # Through the schema, so a recorded Event is defaulted like one sent to the API.
        return validation.parse_object(event).to_dict()


def expire_events(store: store_base.Store, *, ttl: float, now: datetime) -> int:
    """Delete Events last seen more than `ttl` seconds ago; returns how many went."""
    cutoff = now - timedelta(seconds=ttl)
    events, _ = store.list("Event", None)
    removed = 0
    for event in events:
        last = event["spec"].get("lastTimestamp")
        if last and datetime.fromisoformat(last.replace("Z", "+00:00")) < cutoff:
            meta = event["metadata"]
            try:
                store.delete("Event", meta["namespace"], meta["name"])
                removed += 1
            except store_base.NotFoundError:
                pass
    return removed
