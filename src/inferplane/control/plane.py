"""The running control plane's shared state, handed to every request handler and controller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from inferplane.control import auth, errors
from inferplane.control.loadboard import LoadBoard
from inferplane.control.metrics import Metrics
from inferplane.control.secretbox import SecretBox
from inferplane.control.settings import ControlSettings
from inferplane.store import base as store_base
from inferplane.store.watch import WatchHub

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class ControlPlane:
    settings: ControlSettings
    store: store_base.Store
    hub: WatchHub
    authn: auth.Authenticator
    metrics: Metrics
    secretbox: SecretBox
    ready: bool = False
    load_board: LoadBoard = field(default_factory=LoadBoard)
    """Recent load from agents and gateways, in memory only (the metrics channel)."""

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store read off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def write(
        self, fn: Callable[..., dict[str, Any]], *args: Any, plural: str, name: str, **kwargs: Any
    ) -> dict[str, Any]:
        """Run a store write off the loop, translate its errors, and wake the watchers."""
        try:
            result = await asyncio.to_thread(fn, *args, **kwargs)
        except store_base.StoreError as exc:
            raise errors.from_store(exc, plural=plural, name=name) from exc
        if not kwargs.get("dry_run"):
            self.hub.notify()
        return result
