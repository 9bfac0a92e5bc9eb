"""Building objects and running coroutines in the store tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from inferplane.store import Store

T = TypeVar("T")
TIMEOUT_S = 30


def obj(kind: str, name: str, namespace: str | None = "team-a", **fields: Any) -> dict[str, Any]:
    """An object of `kind`; `namespace=None` makes it fleet-scoped (no namespace at all)."""
    meta: dict[str, Any] = {"name": name, **fields.pop("metadata", {})}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": "inferplane.dev/v1", "kind": kind, "metadata": meta, **fields}


def owned_by(owner: dict[str, Any]) -> dict[str, Any]:
    """Metadata naming `owner` as the controller owner."""
    meta = owner["metadata"]
    ref = {"kind": owner["kind"], "name": meta["name"], "uid": meta["uid"], "controller": True}
    return {"ownerReferences": [ref]}


def rv(value: dict[str, Any]) -> int:
    return int(value["metadata"]["resourceVersion"])


def names(store: Store, kind: str, namespace: str | None = None) -> list[str]:
    return [item["metadata"]["name"] for item in store.list(kind, namespace)[0]]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, failing instead of hanging."""
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT_S))
