"""Async store access for controllers: reads, and status writes that skip no-op changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from inferplane.store import base as store_base


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
        updated = {**obj, "status": status}
        stored = await asyncio.to_thread(self._store.update, updated)
        self._notify()
        return stored
