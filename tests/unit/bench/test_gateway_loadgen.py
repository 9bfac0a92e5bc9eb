"""The gateway bench's load generator against its upstream stub, in one process on loopback:
every request sent is accounted for, and answered as the stub promises (no timing checked)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bench.gateway import loadgen, stub

CHUNKS = 4
Address = tuple[str, int]
T = TypeVar("T")


def chat(address: Address, content: str = "hi", **extra: object) -> loadgen.Call:
    body = {"model": "stub", "messages": [{"role": "user", "content": content}], **extra}
    return loadgen.build_call(address, "/v1/chat/completions", body, "sk-test")


def against_stub(scenario: Callable[[Address], Awaitable[T]]) -> T:
    """Run `scenario` with the stub listening on a free port of the same loop."""

    async def run() -> T:
        servers = await stub.start([0], chunks=CHUNKS, chunk_delay=0.005)
        try:
            return await scenario(("127.0.0.1", int(servers[0].sockets[0].getsockname()[1])))
        finally:
            for server in servers:
                server.close()
                await server.wait_closed()

    return asyncio.run(run())


async def every_kind(address: Address) -> dict[str, loadgen.Tally]:
    small = chat(address)
    return {
        "closed": await loadgen.closed_loop(address, small, concurrency=8, duration=0.3),
        "open": await loadgen.open_loop(
            address, small, rate=500, duration=0.3, seed=1, max_connections=16
        ),
        "big": await loadgen.closed_loop(
            address, chat(address, "x" * 216 * 1024), concurrency=2, duration=0.2
        ),
        "streams": await loadgen.closed_loop(
            address, chat(address, stream=True), concurrency=16, duration=0.2
        ),
    }


def test_every_request_is_sent_answered_and_counted() -> None:
    tallies = against_stub(every_kind)
    for name, tally in tallies.items():
        assert tally.offered > 0, name
        assert tally.unfinished == 0, name
        assert len(tally.outcomes) == tally.offered, name
        assert len(tally.ok) == tally.offered, (name, tally.errors())
        assert tally.failed == 0, name
        assert all(o.done >= o.sent >= o.intended > 0 for o in tally.outcomes), name
    # each stream: its events and the [DONE] marker, each counted once
    assert all(len(o.events) == CHUNKS + 1 for o in tallies["streams"].ok)
    assert not any(o.events for o in tallies["closed"].ok)


def test_open_loop_arrivals_follow_the_seed() -> None:
    async def twice(address: Address) -> list[int]:
        call = chat(address)
        return [
            (await loadgen.open_loop(address, call, rate=300, duration=0.2, seed=7)).offered
            for _ in range(2)
        ]

    first, second = against_stub(twice)
    assert first == second > 0
