"""The plane's side of the tunnel: dial the global gateway, and carry its connections to
this plane's engines.

The edge opens one outbound WebSocket (so nothing in the plane needs an inbound port) and
keeps it up, dialling again with backoff when it drops. For each stream the global gateway
opens, it connects to the engine named, but only to an engine of its own plane (`allowed`:
the Endpoints of its cluster as its routing table holds them), so the tunnel is no way into
the plane's network for anyone holding the far end.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from inferplane import logs
from inferplane.backoff import Backoff
from inferplane.gateway.tunnel import frames
from inferplane.gateway.tunnel.hub import MAX_MESSAGE, PATH, PING_SECONDS

log = logging.getLogger("inferplane.gateway.tunnel")

CONNECT_SECONDS = 5.0
READ_BYTES = 64 * 1024
RETRY = Backoff(base=0.5, cap=15.0)

Allowed = Callable[[str, int], bool]
"""(host, port) → whether it is an engine of this plane."""


@dataclass
class _Stream:
    """One connection to an engine, carried for the global gateway."""

    writer: asyncio.StreamWriter | None = None
    pump: asyncio.Task[None] | None = None
    readable: asyncio.Event = field(default_factory=asyncio.Event)
    """Clear while the global side asked for a pause."""


class Edge:
    """Keeps one tunnel to a global gateway up; see the module docstring."""

    def __init__(
        self,
        url: str,
        token: str,
        cluster: str,
        allowed: Allowed,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/") + PATH if not url.rstrip("/").endswith(PATH) else url
        self._token = token
        self.cluster = cluster
        self._allowed = allowed
        self._tls = tls
        self._streams: dict[int, _Stream] = {}
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled: connect, carry streams, and connect again when the tunnel drops."""
        failures = 0
        while True:
            try:
                async with connect(
                    self.url, additional_headers={"Authorization": f"Bearer {self._token}"},
                    ssl=self._tls if self.url.startswith("wss:") else None,
                    max_size=MAX_MESSAGE, ping_interval=PING_SECONDS, compression=None,
                    open_timeout=CONNECT_SECONDS,
                ) as connection:  # fmt: skip
                    failures = 0
                    logs.event(log, "tunnel connected", cluster=self.cluster, url=self.url)
                    await self._carry(connection)
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as error:
                failures += 1
                why = _why(error)
                logs.event(log, "tunnel unavailable", level=logging.WARNING,
                           cluster=self.cluster, url=self.url, error=why)  # fmt: skip
            finally:
                self.connected.clear()
                self._drop_all()
            await asyncio.sleep(RETRY.delay(max(failures, 1)))

    async def _carry(self, connection: ClientConnection) -> None:
        self.connected.set()
        outbox: asyncio.Queue[bytes] = asyncio.Queue()
        writer = asyncio.create_task(_write(connection, outbox))
        try:
            async for message in connection:
                try:
                    frame = frames.decode(message)
                except frames.FrameError as error:
                    logs.event(log, "tunnel frame refused", level=logging.WARNING,
                               cluster=self.cluster, error=str(error))  # fmt: skip
                    continue
                self._on(frame, outbox)
        finally:
            writer.cancel()

    def _on(self, frame: frames.Frame, outbox: asyncio.Queue[bytes]) -> None:
        stream = self._streams.get(frame.stream)
        if frame.kind is frames.Kind.OPEN:
            if stream is None:
                self._open(frame, outbox)
        elif stream is None:
            return
        elif frame.kind is frames.Kind.DATA and stream.writer is not None:
            stream.writer.write(frame.payload)
        elif frame.kind is frames.Kind.CLOSE:
            self._drop(frame.stream)
        elif frame.kind is frames.Kind.PAUSE:
            stream.readable.clear()
        elif frame.kind is frames.Kind.RESUME:
            stream.readable.set()

    def _open(self, frame: frames.Frame, outbox: asyncio.Queue[bytes]) -> None:
        try:
            host, port = frames.parse_target(frame.payload)
        except frames.FrameError as error:
            outbox.put_nowait(frames.encode(frames.Kind.CLOSE, frame.stream, str(error).encode()))
            return
        if not self._allowed(host, port):
            why = f"{host}:{port} is not an engine of plane {self.cluster}"
            logs.event(log, "tunnel target refused", level=logging.WARNING,
                       cluster=self.cluster, target=f"{host}:{port}")  # fmt: skip
            outbox.put_nowait(frames.encode(frames.Kind.CLOSE, frame.stream, why.encode()))
            return
        stream = _Stream()
        stream.readable.set()
        self._streams[frame.stream] = stream
        stream.pump = asyncio.create_task(self._pump(frame.stream, stream, host, port, outbox))

    async def _pump(
        self, number: int, stream: _Stream, host: str, port: int, outbox: asyncio.Queue[bytes]
    ) -> None:
        """Connect to the engine, then send what it writes until it closes."""
        reason = b""
        try:
            reader, stream.writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_SECONDS
            )
            outbox.put_nowait(frames.encode(frames.Kind.OPENED, number))
            while data := await reader.read(READ_BYTES):
                outbox.put_nowait(frames.encode(frames.Kind.DATA, number, data))
                await stream.readable.wait()
        except (OSError, TimeoutError) as error:
            reason = f"cannot connect to {host}:{port}: {_why(error)}".encode()
        finally:
            if self._streams.pop(number, None) is not None:
                outbox.put_nowait(frames.encode(frames.Kind.CLOSE, number, reason))
            if stream.writer is not None:
                stream.writer.close()

    def _drop(self, number: int) -> None:
        stream = self._streams.pop(number, None)
        if stream is None:
            return
        if stream.pump is not None:
            stream.pump.cancel()
        if stream.writer is not None:
            stream.writer.close()

    def _drop_all(self) -> None:
        for number in list(self._streams):
            self._drop(number)


async def _write(connection: ClientConnection, outbox: asyncio.Queue[bytes]) -> None:
    while True:
        message = await outbox.get()
        try:
            await connection.send(message)
        except ConnectionClosed:
            return


def _why(error: BaseException) -> str:
    if isinstance(error, InvalidStatus):
        return f"the global gateway answered {error.response.status_code}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
