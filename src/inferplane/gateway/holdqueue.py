"""Scale from zero: requests for a deployment with no ready replica wait here.

Each waiter is a future keyed by the deployments that could serve it; a new routing table
with a ready endpoint of one of them releases it. The queue is bounded per namespace (a full
queue answers 503 at once rather than growing without limit; one tenant's waiters never
refuse, nor show in the answer to, another's), and `on_demand` is told whenever a deployment
gains its first waiter, and again every `resignal` seconds while any wait, so the control
plane learns there is demand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from inferplane.gateway.table import NsName, Table


class QueueFull(Exception):
    pass


class HoldQueue:
    def __init__(
        self,
        on_demand: Callable[[NsName, int], None],
        *,
        capacity: int = 1000,
        resignal: float = 10.0,
    ) -> None:
        self._on_demand = on_demand
        self._capacity = capacity
        """Most requests that may wait per namespace."""
        self._resignal = resignal
        self._waiting: dict[NsName, list[asyncio.Future[None]]] = {}
        self._signalled: dict[NsName, float] = {}

    def held(self, namespace: str | None = None) -> int:
        """Requests waiting (of `namespace` only, when given)."""
        return sum(len(w) for (ns, _), w in self._waiting.items() if namespace in (None, ns))

    def held_by_deployment(self) -> dict[NsName, int]:
        """Requests waiting for each deployment (one waiting for several counts for each)."""
        return {key: len(waiters) for key, waiters in self._waiting.items() if waiters}

    async def wait(self, deployments: Iterable[NsName], timeout: float) -> bool:
        """Until one of `deployments` (of one namespace) has a ready endpoint (True) or
        `timeout` passes."""
        keys = list(deployments)
        namespace = keys[0][0] if keys else ""
        if self.held(namespace) >= self._capacity:
            message = f"{self._capacity} requests of namespace {namespace!r} already wait"
            raise QueueFull(message)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._waiting.setdefault(key, []).append(future)
            self._signal(key)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for key in keys:
                waiters = self._waiting.get(key, [])
                if future in waiters:
                    waiters.remove(future)
                if not waiters:
                    self._waiting.pop(key, None)

    def _signal(self, key: NsName) -> None:
        now = time.monotonic()
        if now - self._signalled.get(key, -1e9) >= self._resignal:
            self._signalled[key] = now
            self._on_demand(key, len(self._waiting.get(key, ())))

    def release(self, table: Table) -> None:
        """Wake every waiter whose deployment now has a ready endpoint."""
        ready = table.ready_deployments()
        for key in [k for k in self._waiting if k in ready]:
            for future in self._waiting.pop(key):
                if not future.done():
                    future.set_result(None)
        for key in list(self._waiting):
            self._signal(key)
