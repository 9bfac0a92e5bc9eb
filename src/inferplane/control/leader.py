"""Leader election over the store, so several control-plane replicas run one set of controllers.

Every replica serves the API; only the holder of the `controllers` lease reconciles. The lease
is an object in the store written with optimistic concurrency, as Kubernetes' Lease is: the
holder renews it well inside its duration, and another replica takes it only once it has
expired. Two replicas that race for it both read one resourceVersion, so one of them wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from inferplane import logs
from inferplane.api.meta import API_VERSION
from inferplane.control.auth import SYSTEM_NAMESPACE
from inferplane.store import base as store_base

log = logging.getLogger(__name__)
LEASE_KIND = "Lease"  # internal: stored and logged, but not served by the resource API


@dataclass(frozen=True)
class LeaseTerms:
    duration: float = 15.0
    """Seconds a lease stays valid after its last renewal."""
    renew_every: float = 5.0
    """Seconds between the holder's renewals (and the others' attempts)."""


def may_take(lease: dict[str, Any], *, identity: str, now: datetime) -> bool:
    """Whether `identity` may write the lease: it holds it, or the holder let it expire."""
    spec = lease["spec"]
    if spec["holderIdentity"] == identity:
        return True
    renewed = datetime.fromisoformat(spec["renewTime"])
    return now >= renewed + timedelta(seconds=float(spec["leaseDurationSeconds"]))


class LeaderElector:
    def __init__(
        self,
        store: store_base.Store,
        *,
        identity: str,
        name: str = "controllers",
        terms: LeaseTerms | None = None,
    ) -> None:
        self._store = store
        self.identity = identity
        self._name = name
        self.terms = terms or LeaseTerms()

    def try_acquire(self, now: datetime) -> bool:
        """Take or renew the lease; False when another replica holds it or won a race."""
        try:
            lease = self._store.get(LEASE_KIND, SYSTEM_NAMESPACE, self._name)
        except store_base.NotFoundError:
            return self._write(None, now)
        if not may_take(lease, identity=self.identity, now=now):
            return False
        return self._write(lease, now)

    def _write(self, lease: dict[str, Any] | None, now: datetime) -> bool:
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.terms.duration,
            "renewTime": now.astimezone(UTC).isoformat(),
        }
        try:
            if lease is None:
                self._store.create(self._new(spec))
            else:
                self._store.update({**lease, "spec": spec})
        except (store_base.ConflictError, store_base.AlreadyExistsError):
            return False
        return True

    def _new(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": LEASE_KIND,
            "metadata": {"name": self._name, "namespace": SYSTEM_NAMESPACE},
            "spec": spec,
        }

    async def run(
        self,
        lead: Callable[[], Coroutine[Any, Any, None]],
        *,
        on_change: Callable[[bool], None] = lambda _: None,
    ) -> None:
        """Run `lead()` while this replica holds the lease; cancel it the moment it does not."""
        task: asyncio.Task[None] | None = None
        try:
            while True:
                held = await asyncio.to_thread(self.try_acquire, datetime.now(UTC))
                if held and task is None:
                    logs.event(log, "became leader", identity=self.identity, lease=self._name)
                    task = asyncio.create_task(lead())
                    on_change(True)
                elif not held and task is not None:
                    logs.event(log, "lost leadership", identity=self.identity, lease=self._name)
                    await _cancel(task)
                    task = None
                    on_change(False)
                await asyncio.sleep(self.terms.renew_every)
        finally:
            if task is not None:
                await _cancel(task)
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.release)

    def release(self) -> None:
        """Give the lease up at shutdown so another replica takes over at once, not on expiry."""
        try:
            lease = self._store.get(LEASE_KIND, SYSTEM_NAMESPACE, self._name)
        except store_base.NotFoundError:
            return
        if lease["spec"]["holderIdentity"] != self.identity:
            return
        expired = {**lease["spec"], "renewTime": datetime.fromtimestamp(0, UTC).isoformat()}
        with contextlib.suppress(store_base.ConflictError):
            self._store.update({**lease, "spec": expired})


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
