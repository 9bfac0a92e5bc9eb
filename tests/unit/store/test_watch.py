"""WatchHub: backlog then live, fan-out to many, slow subscribers, Gone, notify and poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from inferplane.store import GoneError, Store, WatchEvent, WatchHub
from tests.unit.store.helpers import obj, run

NEVER = 3600.0  # a poll interval no test waits for: only notify() can wake the hub
Scenario = Callable[[WatchHub], Awaitable[None]]


class CountingStore:
    """The real store, counting the change-log reads made through it."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.reads = 0

    def events_since(self, *args: Any, **kwargs: Any) -> list[WatchEvent]:
        self.reads += 1
        return self.inner.events_since(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _with_hub(store: Any, scenario: Scenario, **options: Any) -> None:
    async def main() -> None:
        hub = WatchHub(store, **{"poll_interval": NEVER, **options})
        await hub.start()
        try:
            await scenario(hub)
        finally:
            await hub.stop()

    run(main())


async def _create(store: Store, hub: WatchHub, *names: str, kind: str = "Replica") -> None:
    """Write from a worker thread, as the server does, then notify the hub."""

    def write() -> None:
        for name in names:
            store.create(obj(kind, name))

    await asyncio.to_thread(write)
    hub.notify()


async def _take(stream: AsyncIterator[WatchEvent], count: int) -> list[int]:
    return [(await anext(stream)).resource_version for _ in range(count)]


def _subscribe(hub: WatchHub, since: int = 0, **filters: Any) -> Any:
    stream = hub.subscribe(
        kind=filters.get("kind"), namespace=filters.get("namespace"), resource_version=since
    )
    return contextlib.aclosing(stream)


def test_backlog_then_live_events_filtered_by_kind(store: Store) -> None:
    async def scenario(hub: WatchHub) -> None:
        await _create(store, hub, "a", "b")
        async with _subscribe(hub, kind="Replica") as stream:
            assert await _take(stream, 2) == [1, 2]
            await _create(store, hub, "chat", kind="Deployment")
            await _create(store, hub, "c")
            event = await anext(stream)
            assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "c")
            assert event.resource_version == 4

    _with_hub(store, scenario)


def test_a_hundred_subscribers_share_one_reader_and_see_every_event(store: Store) -> None:
    counting = CountingStore(store)
    writes = 20

    async def scenario(hub: WatchHub) -> None:
        await _create(store, hub, "first")
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(_subscribe(hub)) for _ in range(100)]
            assert await asyncio.gather(*(_take(s, 1) for s in streams)) == [[1]] * 100
            reads_before = counting.reads
            consumers = asyncio.gather(*(_take(s, writes) for s in streams))
            for i in range(writes):
                await _create(store, hub, f"r{i}")
            assert await consumers == [list(range(2, writes + 2))] * 100
            assert counting.reads - reads_before <= writes + 1  # per write, not per subscriber

    _with_hub(counting, scenario)


def test_a_slow_subscriber_whose_queue_overflows_loses_nothing(store: Store) -> None:
    async def scenario(hub: WatchHub) -> None:
        await _create(store, hub, "first")
        async with _subscribe(hub) as slow, _subscribe(hub) as probe:
            assert await _take(slow, 1) == await _take(probe, 1) == [1]
            probe_next = asyncio.ensure_future(_take(probe, 1))
            await _create(store, hub, *(f"r{i}" for i in range(30)))
            assert await probe_next == [2]  # the hub has offered all 30: slow's queue overflowed
            assert await _take(slow, 30) == list(range(2, 32))
            assert await _take(probe, 29) == list(range(3, 32))

    _with_hub(store, scenario, queue_size=2)


def test_a_compacted_version_raises_gone_before_any_event(store: Store) -> None:
    async def scenario(hub: WatchHub) -> None:
        await _create(store, hub, "a", "b", "c")
        await asyncio.to_thread(store.compact, keep=1)
        async with _subscribe(hub, since=1) as stream:
            with pytest.raises(GoneError):
                await anext(stream)
        async with _subscribe(hub, since=2) as stream:
            assert await _take(stream, 1) == [3]

    _with_hub(store, scenario)


def test_compaction_past_a_live_subscriber_ends_it_with_gone(store: Store) -> None:
    def write(count: int) -> None:  # no notify: the hub reads nothing until the end
        for _ in range(count):
            store.create(obj("Replica", f"r{store.current_resource_version()}"))

    async def scenario(hub: WatchHub) -> None:
        await asyncio.to_thread(write, 2)
        async with _subscribe(hub) as stream:
            assert await _take(stream, 2) == [1, 2]  # from the log, not from the hub
            waiting = asyncio.ensure_future(_take(stream, 1))
            await asyncio.to_thread(write, 4)
            await asyncio.to_thread(store.compact, keep=1)
            hub.notify()
            with pytest.raises(GoneError):
                await waiting

    _with_hub(store, scenario)


def test_notify_from_a_worker_thread_wakes_a_waiting_subscriber(store: Store) -> None:
    async def scenario(hub: WatchHub) -> None:
        await _create(store, hub, "a")
        async with _subscribe(hub) as stream:
            assert await _take(stream, 1) == [1]
            waiting = asyncio.ensure_future(_take(stream, 1))

            def write_and_notify() -> None:
                store.create(obj("Replica", "b"))
                hub.notify()

            await asyncio.to_thread(write_and_notify)
            assert await asyncio.wait_for(waiting, 5) == [2]  # the poll interval is an hour

    _with_hub(store, scenario)


def test_the_poll_catches_writes_nobody_notified(store: Store) -> None:
    async def scenario(hub: WatchHub) -> None:
        await _create(store, hub, "a")
        async with _subscribe(hub) as stream:
            assert await _take(stream, 1) == [1]
            waiting = asyncio.ensure_future(_take(stream, 1))
            await asyncio.to_thread(store.create, obj("Replica", "from-another-replica"))
            assert await asyncio.wait_for(waiting, 5) == [2]

    _with_hub(store, scenario, poll_interval=0.05)


def test_stop_ends_every_stream_and_later_subscriptions(store: Store) -> None:
    async def main() -> None:
        hub = WatchHub(store, poll_interval=NEVER)
        await hub.start()
        await _create(store, hub, "a")
        async with _subscribe(hub) as stream, _subscribe(hub) as late:
            assert await _take(stream, 1) == [1]
            waiting = asyncio.ensure_future(anext(stream))
            await hub.stop()
            with pytest.raises(StopAsyncIteration):
                await waiting
            with pytest.raises(StopAsyncIteration):
                await anext(late)

    run(main())
