"""Writing bindings into Pool status with optimistic concurrency.

A Pool's `status.nodes` is the fleet's book of what is taken. Every change is read, computed
with `policy.placement.bindings`, and written back with the resourceVersion it was read at:
when another writer (a second scheduler, an agent reporting readyNodes) got there first, the
store refuses the write with a Conflict and the caller reads again. No lock, no overcommit.
"""

from __future__ import annotations

from typing import Any

from inferplane.api import fleet
from inferplane.control.runtime.objects import Objects
from inferplane.policy.placement import bindings
from inferplane.policy.placement.decisions import Binding
from inferplane.store import base as store_base

RELEASE_ATTEMPTS = 8


async def allocate(
    objects: Objects, pool: dict[str, Any], binding: Binding, *, replica: str
) -> dict[str, Any]:
    """Take the binding's devices in `pool` as read; AllocationError when that view is stale,
    ConflictError when the pool changed since it was read."""
    updated = bindings.allocate(fleet.Pool.model_validate(pool), binding, replica=replica)
    return await objects.write_status(pool, _status(updated))


async def release(objects: Objects, binding: Binding, *, replica: str) -> None:
    """Free what the replica holds in its pool, re-reading on conflicts; a pool that is gone
    holds nothing to free."""
    for attempt in range(RELEASE_ATTEMPTS):
        pool = await objects.get("Pool", "", binding.pool)
        if pool is None or pool["spec"].get("cluster") != binding.cluster:
            return
        updated = bindings.release(fleet.Pool.model_validate(pool), binding, replica=replica)
        try:
            await objects.write_status(pool, _status(updated))
            return
        except store_base.ConflictError:
            if attempt == RELEASE_ATTEMPTS - 1:
                raise


def _status(pool: fleet.Pool) -> dict[str, Any]:
    return pool.status.model_dump(mode="json", exclude_none=True)
