"""The gateway bench's load generator against its upstream stub, in one process on loopback:
every request sent is accounted for, and answered as the stub promises (no timing checked)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trustme
from bench.gateway import loadgen, stub

CHUNKS = 4
Address = tuple[str, int]
T = TypeVar("T")


def chat(address: Address, content: str = "hi", **extra: object) -> loadgen.Call:
    body = {"model": "stub", "messages": [{"role": "user", "content": content}], **extra}
    return loadgen.build_call(address, "/v1/chat/completions", body, "sk-test")


def against_stub(
    scenario: Callable[[Address], Awaitable[T]], tls: ssl.SSLContext | None = None
) -> T:
    """Run `scenario` with the stub listening on a free port of the same loop (over TLS
    with `tls`)."""

    async def run() -> T:
        servers = await stub.start([0], chunks=CHUNKS, chunk_delay=0.005, tls=tls)
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


def test_over_tls_every_request_is_answered_and_the_server_certificate_checked() -> None:
    ca = trustme.CA()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async def both(address: Address) -> tuple[loadgen.Tally, loadgen.Tally, loadgen.Tally]:
        call, streamed = chat(address), chat(address, stream=True)
        closed = await loadgen.closed_loop(address, call, concurrency=4, duration=0.2, tls=trusting)
        opened = await loadgen.open_loop(
            address, streamed, rate=200, duration=0.2, seed=1, tls=trusting
        )
        untrusted = await loadgen.closed_loop(
            address, call, concurrency=1, duration=0.1, tls=ssl.create_default_context()
        )
        return closed, opened, untrusted

    closed, opened, untrusted = against_stub(both, server)
    for tally in (closed, opened):
        assert tally.offered > 0 and len(tally.ok) == tally.offered, tally.errors()
    assert all(len(o.events) == CHUNKS + 1 for o in opened.ok)
    assert not untrusted.ok and any("CERTIFICATE_VERIFY_FAILED" in e for e in untrusted.errors())
