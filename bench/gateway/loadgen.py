"""HTTP/1.1 load from one core: raw asyncio + httptools over keep-alive connections.

Two drivers share one connection pool. `open_loop` sends at seeded Poisson arrival times whatever
the answers do, and times each request from its INTENDED send time, so a server that falls behind
shows its queue in the latency (no coordinated omission). `closed_loop` keeps a fixed number of
requests in flight. Each connection carries one request at a time; an arrival that finds none idle
waits in a backlog (its clock running) while the pool grows up to its limit. Streamed answers
record the arrival time of every SSE event (each `\\n\\n`).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httptools
import orjson

now = time.perf_counter


@dataclass(frozen=True)
class Call:
    """One request, serialised once and sent as-is on every connection."""

    raw: bytes
    stream: bool


def build_call(address: tuple[str, int], path: str, body: dict[str, object], token: str) -> Call:
    data = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return Call(head.encode() + data, bool(body.get("stream")))


@dataclass
class Outcome:
    """What became of one request; times are `now()` seconds."""

    intended: float
    sent: float = 0.0
    done: float = 0.0
    status: int = 0
    events: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error and self.done > 0

    @property
    def latency(self) -> float:
        return self.done - self.intended


@dataclass
class Tally:
    """A run's outcomes, how many it meant to send, and its measured window."""

    outcomes: list[Outcome]
    offered: int
    window: float
    unfinished: int = 0

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> int:
        return self.offered - len(self.ok)

    def errors(self) -> list[str]:
        seen = sorted({o.error or f"HTTP {o.status}" for o in self.outcomes if not o.ok})
        return seen + ([f"{self.unfinished} unfinished"] if self.unfinished else [])


Done = Callable[["Connection", Outcome | None], None]
"""Called with each finished request's outcome, and with None when an idle connection closes."""


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, on_done: Done) -> None:
        self.on_done = on_done
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.outcome: Outcome | None = None
        self.stream, self.carry, self.closed = False, b"", False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def send(self, call: Call, intended: float) -> None:
        assert self.transport is not None and self.outcome is None
        self.outcome = Outcome(intended, sent=now())
        self.stream, self.carry = call.stream, b""
        self.transport.write(call.raw)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(f"bad HTTP: {exc}")
            self.close()

    def on_headers_complete(self) -> None:
        if self.outcome is not None:
            self.outcome.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.stream and self.outcome is not None:
            count = body.count(b"\n\n") + (self.carry == b"\n" and body[:1] == b"\n")
            if count:
                self.outcome.events += [now()] * count
            self.carry = body[-1:]

    def on_message_complete(self) -> None:
        outcome, self.outcome = self.outcome, None
        if outcome is not None:
            outcome.done = now()
            if not self.parser.should_keep_alive():
                self.close()
            self.on_done(self, outcome)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.outcome is None:
            self.on_done(self, None)
        self.fail(f"connection lost: {exc}" if exc else "connection closed")

    def fail(self, why: str) -> None:
        outcome, self.outcome = self.outcome, None
        if outcome is not None:
            outcome.error, outcome.done = why, now()
            self.on_done(self, outcome)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Connections to one address, over TLS with `tls`; `submit` sends now on an idle one or
    queues the call."""

    def __init__(
        self,
        address: tuple[str, int],
        limit: int,
        on_outcome: Callable[[Outcome], None],
        tls: ssl.SSLContext | None = None,
    ):
        self.address, self.limit, self.on_outcome, self.tls = address, limit, on_outcome, tls
        self.idle: list[Connection] = []
        self.live: set[Connection] = set()
        self.backlog: deque[tuple[Call, float]] = deque()
        self.opening, self.in_flight = 0, 0
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, call: Call, intended: float) -> None:
        self.in_flight += 1
        if self.idle:
            self.idle.pop().send(call, intended)
            return
        self.backlog.append((call, intended))
        if len(self.live) + self.opening < self.limit:
            self.grow()

    def grow(self) -> None:
        self.opening += 1
        task = asyncio.get_running_loop().create_task(self.connect())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: Connection(self.done),
                *self.address,
                ssl=self.tls,
                server_hostname=self.address[0] if self.tls else None,
            )
        except OSError as exc:
            self.opening -= 1
            if self.backlog:  # nothing will ever carry it: fail the oldest waiting call
                _, intended = self.backlog.popleft()
                self.finish(Outcome(intended, done=now(), error=f"connect: {exc}"))
            return
        self.opening -= 1
        self.live.add(connection)
        self.release(connection)

    def done(self, connection: Connection, outcome: Outcome | None) -> None:
        if outcome is not None:
            self.finish(outcome)
        if connection.closed:
            if connection in self.idle:
                self.idle.remove(connection)
            self.live.discard(connection)
            if self.backlog:
                self.grow()
        else:
            self.release(connection)

    def finish(self, outcome: Outcome) -> None:
        self.in_flight -= 1
        self.on_outcome(outcome)

    def release(self, connection: Connection) -> None:
        if self.backlog:
            connection.send(*self.backlog.popleft())
        else:
            self.idle.append(connection)

    async def warm(self, count: int) -> None:
        """Open `count` connections up front, so a run does not time its own connects."""
        for _ in range(min(count, self.limit) - len(self.live) - self.opening):
            self.grow()
        while self.opening:
            await asyncio.sleep(0.005)

    async def drain(self, timeout: float) -> int:
        """Wait for the calls in flight; the number still unfinished after `timeout`."""
        deadline = now() + timeout
        while self.in_flight and now() < deadline:
            await asyncio.sleep(0.005)
        return self.in_flight

    def close(self) -> None:
        for connection in list(self.live):
            connection.close()


async def open_loop(
    address: tuple[str, int], call: Call, *, rate: float, duration: float, seed: int,
    max_connections: int = 1024, drain: float = 2.0, tls: ssl.SSLContext | None = None,
) -> Tally:  # fmt: skip
    """Poisson arrivals at `rate`/s for `duration` s; latency from each intended send time."""
    rng, outcomes = random.Random(seed), list[Outcome]()
    pool = Pool(address, max_connections, outcomes.append, tls)
    await pool.warm(min(max_connections, 64))
    start, offered = now(), 0
    intended = start + rng.expovariate(rate)
    while intended < start + duration:
        late = intended - now()
        if late > 0:
            await asyncio.sleep(late)
        while intended <= now() and intended < start + duration:
            pool.submit(call, intended)
            offered += 1
            intended += rng.expovariate(rate)
    unfinished = await pool.drain(drain)
    pool.close()
    return Tally(outcomes, offered, duration, unfinished)


async def closed_loop(
    address: tuple[str, int], call: Call, *, concurrency: int, duration: float,
    drain: float = 10.0, tls: ssl.SSLContext | None = None,
) -> Tally:  # fmt: skip
    """`concurrency` requests in flight for `duration` s, each sent as the one before it ends."""
    outcomes: list[Outcome] = []
    offered = 0

    def again(outcome: Outcome) -> None:
        nonlocal offered
        outcomes.append(outcome)
        if now() < deadline:
            offered += 1
            pool.submit(call, now())

    pool = Pool(address, concurrency, again, tls)
    await pool.warm(concurrency)
    deadline = now() + duration
    for _ in range(concurrency):
        offered += 1
        pool.submit(call, now())
    unfinished = await pool.drain(drain)
    pool.close()
    return Tally(outcomes, offered, duration, unfinished)
