"""Pooled keep-alive HTTP/1.1 connections to upstreams, parsed by httptools.

`Pool.request` sends one request and returns an `Exchange` once the response head has
arrived; the body is then read whole (`read`) or chunk by chunk as it comes (`next_chunk`).
A connection goes back to the pool only when its response was read to the end; an abandoned
exchange closes its connection, which is how an upstream learns that the client left.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from inferplane import tls
from inferplane.gateway.wire.connection import Conn, Origin, UpstreamError, wait

__all__ = ["Exchange", "Origin", "Pool", "UpstreamError"]


class Exchange:
    """One response being read."""

    __slots__ = ("_conn", "_pool", "_released")

    def __init__(self, pool: Pool, conn: Conn) -> None:
        self._pool = pool
        self._conn = conn
        self._released = False

    @property
    def status(self) -> int:
        return self._conn.status

    @property
    def headers(self) -> dict[bytes, bytes]:
        return self._conn.headers

    async def next_chunk(self, idle_timeout: float) -> bytes | None:
        """The next piece of the body as it arrived, or None at its end."""
        conn = self._conn
        while True:
            if conn.chunks:
                return conn.chunks.popleft()
            if conn.complete:
                self._release()
                return None
            await self._news(idle_timeout)

    async def pump(self, sink: Callable[[bytes], None], idle_timeout: float) -> None:
        """Hand every piece of the body to `sink` as it arrives, until the end. An exception
        the sink raises ends the exchange and is raised here."""
        conn = self._conn
        while conn.chunks:
            sink(conn.chunks.popleft())
        conn.sink, conn.last_body = sink, time.monotonic()
        try:
            while not conn.complete:
                await self._news(idle_timeout, pushed=True)
        finally:
            conn.sink = None
        if conn.sink_error is not None:
            self.abandon()
            raise conn.sink_error
        self._release()

    async def _news(self, idle_timeout: float, *, pushed: bool = False) -> None:
        """Until the connection has news (a piece, the end, an error). The upstream's or the
        sink's error, or `idle_timeout` s of silence, ends the exchange and is raised. In push
        mode pieces do not wake us, so the timer only checks when the last one came."""
        conn = self._conn
        failure = conn.sink_error or conn.error
        if failure is not None:
            self.abandon()
            raise failure
        try:
            await wait(conn, idle_timeout)
        except TimeoutError:
            if pushed and time.monotonic() - conn.last_body < idle_timeout:
                return
            self.abandon()
            raise UpstreamError(
                "timeout", f"no data from upstream for {idle_timeout:g} s", before_response=False
            ) from None

    def pause(self) -> None:
        """Stop reading from the upstream (the client reads slower than it writes)."""
        if self._conn.transport is not None:
            self._conn.transport.pause_reading()

    def resume(self) -> None:
        if self._conn.transport is not None and not self._released:
            self._conn.transport.resume_reading()

    def body_if_complete(self) -> bytes | None:
        """The whole body if it has all arrived (the usual small answer: no coroutine), else
        None, and nothing is consumed."""
        conn = self._conn
        if not conn.complete or conn.error is not None:
            return None
        chunks = conn.chunks
        body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._release()
        return body

    async def read(self, timeout: float) -> bytes:
        """The whole body."""
        parts = []
        while (chunk := await self.next_chunk(timeout)) is not None:
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def abandon(self) -> None:
        """Stop reading: the connection closes, and the upstream sees the client leave."""
        if not self._released:
            self._released = True
            self._conn.close()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._pool.give_back(self._conn)


class Dialer(Protocol):
    """Another way to an origin than TCP (a plane's tunnel): a connection, or None when it
    has none to that origin."""

    async def dial(self, origin: Origin, timeout: float) -> Conn | None: ...


class Pool:
    """Idle keep-alive connections per origin, most recently used first."""

    def __init__(self, *, max_idle_per_origin: int = 256) -> None:
        self.dialer: Dialer | None = None
        """Tried before TCP for an origin in a plane (Origin.cluster set)."""
        self._idle: dict[Origin, list[Conn]] = {}
        self._max_idle = max_idle_per_origin
        # https:// upstreams: certificate and host name verified against the system's CAs.
        self._tls = ssl.create_default_context()

    def trust(self, ca_file: Path) -> None:
        """Also trust the CAs in `ca_file` for https:// upstreams (a private upstream's CA)."""
        tls.trust(self._tls, ca_file)

    async def request(
        self,
        origin: Origin,
        head: bytes,
        body: bytes,
        *,
        connect_timeout: float,
        first_byte_timeout: float,
    ) -> Exchange:
        """Send `head` (request line and headers, ending in a blank line) and `body`; return
        once the response head is in. A reused connection the upstream had already closed is
        replaced by a fresh one, once, before any response byte."""
        conn = self._idle_connection(origin) or await self._connect(origin, connect_timeout)
        try:
            return await self._exchange(conn, head, body, first_byte_timeout)
        except UpstreamError as error:
            if not (conn.reused and error.before_response and not conn.got_bytes):
                raise
        fresh = await self._connect(origin, connect_timeout)
        return await self._exchange(fresh, head, body, first_byte_timeout)

    async def _exchange(self, conn: Conn, head: bytes, body: bytes, timeout: float) -> Exchange:
        conn.send(head + body if len(body) < 65536 else head)
        if len(body) >= 65536 and conn.transport is not None:
            conn.transport.write(body)
        while conn.status == 0:
            if conn.error is not None:
                conn.close()
                raise conn.error
            try:
                await wait(conn, timeout)
            except TimeoutError:
                conn.close()
                raise UpstreamError(
                    "timeout", f"no response from upstream in {timeout:g} s", before_response=True
                ) from None
            except asyncio.CancelledError:
                conn.close()
                raise
        return Exchange(self, conn)

    def _idle_connection(self, origin: Origin) -> Conn | None:
        """The most recently used idle connection that is still open, if any."""
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable:
                conn.reused = True
                return conn
        return None

    async def _connect(self, origin: Origin, timeout: float) -> Conn:
        if origin.cluster and self.dialer is not None:
            tunneled = await self.dialer.dial(origin, timeout)
            if tunneled is not None:
                return tunneled
        loop = asyncio.get_running_loop()
        context = self._tls if origin.tls else None  # not `tls`: that is the module
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: Conn(origin),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                ),
                timeout,
            )
        except TimeoutError:
            raise UpstreamError(
                "connect",
                f"connecting to {origin.host}:{origin.port} took over {timeout:g} s",
                before_response=True,
            ) from None
        except OSError as error:
            raise UpstreamError(
                "connect",
                f"cannot connect to {origin.host}:{origin.port}: {error.strerror or error}",
                before_response=True,
            ) from None
        return conn

    def give_back(self, conn: Conn) -> None:
        if not conn.keep_alive or not conn.usable:
            conn.close()
            return
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= self._max_idle:
            conn.close()
        else:
            idle.append(conn)

    def drop(self, keep: set[Origin]) -> None:
        """Close idle connections to origins no longer routed to."""
        for origin in [o for o in self._idle if o not in keep]:
            for conn in self._idle.pop(origin):
                conn.close()

    def drop_cluster(self, cluster: str) -> None:
        """Close idle connections to a plane's engines: the next ones take the new way there
        (its tunnel came up)."""
        self.drop({o for o in self._idle if o.cluster != cluster})

    def close(self) -> None:
        self.drop(set())
