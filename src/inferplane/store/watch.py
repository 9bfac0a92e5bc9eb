"""Fan-out of the change log to many watchers for the cost of one reader.

One poller task reads the log after every `notify()` (the in-process writer calls it after
each write) or every `poll_interval` (to catch other writers, such as another control-plane
replica on PostgreSQL) and offers each event to every subscriber's bounded queue.

A subscriber first replays the log from its resourceVersion, then takes live events from its
queue, skipping any resourceVersion it has already yielded: replay and queue overlap, they
never leave a gap. A subscriber whose queue overflows stops receiving and, once it has drained
what it has, replays the log again from where it is: slow, never lossy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from inferplane.store import base

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Subscriber:
    kind: str | None
    namespace: str | None
    last: int
    """The resourceVersion of the last event yielded (or the one the watch started from)."""
    queue: asyncio.Queue[base.WatchEvent | None]
    lagging: bool = False
    """Its queue overflowed: events were dropped and must be replayed from the log."""
    closed: bool = field(default=False)

    def offer(self, event: base.WatchEvent) -> None:
        if self.lagging or not self.matches(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagging = True

    def matches(self, event: base.WatchEvent) -> bool:
        meta = event.object.get("metadata", {})
        return (self.kind is None or event.object.get("kind") == self.kind) and (
            self.namespace is None or (meta.get("namespace") or "") == self.namespace
        )

    def accept(self, event: base.WatchEvent) -> bool:
        """True the first time a resourceVersion comes by; it is then yielded."""
        if event.resource_version <= self.last:
            return False
        self.last = event.resource_version
        return True

    def wake(self, *, lagging: bool = False, closed: bool = False) -> None:
        self.lagging = self.lagging or lagging
        self.closed = self.closed or closed
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes its reader anyway
            self.queue.put_nowait(None)


class WatchHub:
    """Serves `subscribe()` streams from one shared reader of the store's change log."""

    def __init__(
        self,
        store: base.Store,
        *,
        poll_interval: float = 0.5,
        queue_size: int = 1000,
        page_size: int = 1000,
    ) -> None:
        self._store = store
        self._poll_interval = poll_interval
        self._queue_size = queue_size
        self._page_size = page_size
        self._subscribers: set[_Subscriber] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._last = 0
        self._stopped = False

    async def start(self) -> None:
        """Start polling from the store's current resourceVersion."""
        self._loop = asyncio.get_running_loop()
        self._last = await asyncio.to_thread(self._store.current_resource_version)
        self._task = asyncio.create_task(self._run(), name="watch-hub")

    async def stop(self) -> None:
        """Stop polling and end every subscription, present and future: their streams finish."""
        self._loop = None
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sub in self._subscribers:
            sub.wake(closed=True)

    def notify(self) -> None:
        """Wake the poller now; safe to call from any thread, a no-op when not started."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)

    async def subscribe(
        self, *, kind: str | None, namespace: str | None, resource_version: int
    ) -> AsyncIterator[base.WatchEvent]:
        """Every change after `resource_version` matching kind and namespace, in order, once.

        Raises GoneError, before yielding anything, when `resource_version` was compacted.
        """
        queue: asyncio.Queue[base.WatchEvent | None] = asyncio.Queue(self._queue_size)
        sub = _Subscriber(kind, namespace, resource_version, queue, closed=self._stopped)
        self._subscribers.add(sub)
        try:
            while not sub.closed:
                sub.lagging = False  # from here on the poller queues again
                async with contextlib.aclosing(self._replay(sub)) as replay:
                    async for event in replay:
                        yield event
                while not sub.closed and not (sub.lagging and queue.empty()):
                    live = await queue.get()
                    if live is not None and sub.accept(live):
                        yield live
        finally:
            self._subscribers.discard(sub)

    async def _replay(self, sub: _Subscriber) -> AsyncGenerator[base.WatchEvent, None]:
        """The log after `sub.last`, page by page, until it is read to its end."""
        while True:
            page = await asyncio.to_thread(
                self._store.events_since,
                sub.last,
                kind=sub.kind,
                namespace=sub.namespace,
                limit=self._page_size,
            )
            for event in page:
                if sub.accept(event):
                    yield event
            if len(page) < self._page_size:
                return

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow stop()'s cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._poll()
            except Exception:
                logger.exception("watch hub: reading the change log failed; retrying")

    async def _poll(self) -> None:
        while True:
            try:
                page = await asyncio.to_thread(
                    self._store.events_since, self._last, limit=self._page_size
                )
            except base.GoneError as gone:
                self._fell_behind(gone.oldest)
                continue
            for event in page:
                for sub in self._subscribers:
                    sub.offer(event)
                self._last = event.resource_version
            if len(page) < self._page_size:
                return

    def _fell_behind(self, oldest: int) -> None:
        """The log was compacted past the poller: every subscriber replays (or gets Gone)."""
        logger.warning("watch hub fell behind compaction; subscribers replay from the log")
        self._last = oldest
        for sub in self._subscribers:
            sub.wake(lagging=True)
