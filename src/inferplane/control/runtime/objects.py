"""Async store access for controllers: reads, writes that wake the watchers, and the clock.

Every write goes through here so the watch hub learns of it at once (controllers chain on each
other's writes) and no-op status writes are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from inferplane.store import base as store_base

Clock = Callable[[], datetime]
"""Where controllers read the time: a parameter, so tests can move it by hand."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Objects:
    def __init__(self, store: store_base.Store, notify: Callable[[], None]) -> None:
        self._store = store
        self._notify = notify

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await asyncio.to_thread(self._store.get, kind, namespace, name)
        except store_base.NotFoundError:
            return None

    async def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        items, _ = await asyncio.to_thread(self._store.list, kind, namespace)
        return items

    async def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Store `status` on `obj` if it differs; ConflictError when `obj` is stale."""
        if obj.get("status") == status:
            return obj
        return await self.update({**obj, "status": status})

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object; AlreadyExistsError when the name is taken."""
        stored = await asyncio.to_thread(self._store.create, obj)
        self._notify()
        return stored

    async def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace `obj` as of its resourceVersion; ConflictError when it is stale."""
        stored = await asyncio.to_thread(self._store.update, obj)
        self._notify()
        return stored

    async def delete(
        self, kind: str, namespace: str, name: str, *, resource_version: int | None = None
    ) -> dict[str, Any] | None:
        """Delete (or mark deleting while finalizers hold it); None when it was already gone."""
        try:
            removed = await asyncio.to_thread(
                self._store.delete, kind, namespace, name, resource_version=resource_version
            )
        except store_base.NotFoundError:
            return None
        self._notify()
        return removed
