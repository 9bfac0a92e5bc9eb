"""One keep-alive HTTP/1.1 connection to an upstream, parsed by httptools, and where an
upstream is (`Origin`) and how it failed (`UpstreamError`)."""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools


@dataclass(frozen=True)
class Origin:
    """Where an upstream listens."""

    host: str
    port: int
    tls: bool = False
    base_path: bytes = b""
    """Path prefix of the upstream's API root, e.g. b'/openai' for https://x/openai."""
    cluster: str = ""
    """The plane of a replica's engine ('' for an external upstream): while that plane's edge
    keeps a tunnel up, connections go through it (gateway/tunnel)."""

    def __hash__(self) -> int:
        return self._hash

    @functools.cached_property
    def _hash(self) -> int:
        """Made once: an origin keys the connection pool on every request."""
        return hash((self.host, self.port, self.tls, self.base_path, self.cluster))

    @functools.cached_property
    def host_header(self) -> bytes:
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        text = host if self.port == default else f"{host}:{self.port}"
        return text.encode()

    @classmethod
    def parse(cls, url: str, *, cluster: str = "") -> Origin:
        parsed = httptools.parse_url(url.encode())
        tls = parsed.schema == b"https"
        port = parsed.port or (443 if tls else 80)
        base = (parsed.path or b"").rstrip(b"/")
        return cls(parsed.host.decode(), port, tls, base, cluster)


class UpstreamError(Exception):
    """The upstream could not be reached, or broke off; `kind` names how."""

    def __init__(self, kind: str, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.kind = kind
        """connect, timeout, reset or protocol."""
        self.before_response = before_response
        """True when no byte of the response had arrived."""


class Conn(asyncio.Protocol):
    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.chunks: deque[bytes] = deque()
        self.complete = False
        self.got_bytes = False
        self.error: UpstreamError | None = None
        self.keep_alive = True
        self.waiter: asyncio.Future[None] | None = None
        self.sink: Callable[[bytes], None] | None = None
        self.sink_error: BaseException | None = None
        self.last_body = 0.0

    def send(self, data: bytes) -> None:
        self._reset()
        assert self.transport is not None
        self.transport.write(data)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(
                UpstreamError(
                    "protocol", f"bad HTTP from upstream: {error}", before_response=self.status == 0
                )
            )
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.complete:
            why = f": {exc}" if exc else ""
            self._fail(
                UpstreamError(
                    "reset",
                    f"upstream closed the connection{why}",
                    before_response=self.status == 0,
                )
            )

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        sink = self.sink
        if sink is None:
            self.chunks.append(body)
            self._wake()
            return
        # Push mode: the piece goes on to the client from inside this callback, with no task
        # switch, future or timer per chunk; the waiting task wakes only at the end.
        self.last_body = time.monotonic()
        try:
            sink(body)
        except Exception as error:
            self.sink, self.sink_error = None, error
            self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


async def wait(conn: Conn, timeout: float) -> None:
    """Until the connection has news (head, chunk, end or error), at most `timeout` s (and at
    most TICK s more)."""
    loop = asyncio.get_running_loop()
    waiter = conn.waiter = loop.create_future()
    deadlines = _deadlines_of(loop)
    deadlines.add(waiter, time.monotonic() + timeout)
    try:
        await waiter
    finally:
        deadlines.waits.pop(waiter, None)
        conn.waiter = None


TICK = 0.05
"""How often waits are checked for their deadline: a wait ends up to this much late."""


class Deadlines:
    """The deadlines of one loop's waits, checked by one timer every TICK s while any wait is
    open: a timer per wait (call_later and cancel) cost 2 % of a proxied request."""

    def __init__(self) -> None:
        # no reference to the loop: it keys these in a WeakKeyDictionary
        self.waits: dict[asyncio.Future[None], float] = {}
        self._ticking = False

    def add(self, waiter: asyncio.Future[None], deadline: float) -> None:
        self.waits[waiter] = deadline
        if not self._ticking:
            self._ticking = True
            asyncio.get_running_loop().call_later(TICK, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        expired = [w for w, deadline in self.waits.items() if deadline <= now]
        for waiter in expired:
            del self.waits[waiter]
            if not waiter.done():
                waiter.set_exception(TimeoutError())
        if self.waits:
            asyncio.get_running_loop().call_later(TICK, self._tick)
        else:
            self._ticking = False


_DEADLINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
    weakref.WeakKeyDictionary()
)
_last: tuple[asyncio.AbstractEventLoop | None, Deadlines] = (None, Deadlines())


def _deadlines_of(loop: asyncio.AbstractEventLoop) -> Deadlines:
    """The loop's Deadlines (the gateway has one loop: the last one found is kept at hand)."""
    global _last
    if _last[0] is loop:
        return _last[1]
    deadlines = _DEADLINES.get(loop)
    if deadlines is None:
        deadlines = _DEADLINES[loop] = Deadlines()
    _last = (loop, deadlines)
    return deadlines
