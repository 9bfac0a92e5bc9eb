"""The global gateway's side of the tunnels: it accepts each plane edge's WebSocket and
carries its connections to that plane's engines over it.

An edge authenticates with a gateway key that names its cluster (`spec.cluster`); the key
says which plane's traffic it may carry, nothing more. While a tunnel of a cluster is up,
the connection pool dials that cluster's engines through it (`dial`) rather than over TCP:
each connection is a stream of the tunnel, and to the pool it is an ordinary transport, so
keep-alive, streaming, timeouts and retries work as they do on a direct connection. When
the tunnel drops, its streams break as a reset connection would, and requests are retried
elsewhere; the edge dials again.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from inferplane import logs
from inferplane.gateway.metrics import GatewayMetrics
from inferplane.gateway.tunnel import frames
from inferplane.gateway.wire.connection import Conn, Origin, UpstreamError

log = logging.getLogger("inferplane.gateway.tunnel")

PATH = "/tunnel"
MAX_MESSAGE = 1 << 20
"""Largest frame either side accepts."""
CHUNK = 256 * 1024
"""Writes are cut into DATA frames of at most this many bytes."""
PING_SECONDS = 10.0

Authorize = Callable[[str], str | None]
"""A bearer token → the cluster whose edge it is, or None when it is none."""


class StreamTransport(asyncio.Transport):
    """One stream of a tunnel, as the transport of a pooled connection."""

    def __init__(self, tunnel: Tunnel, stream: int, protocol: Conn) -> None:
        super().__init__()
        self._tunnel = tunnel
        self._stream = stream
        self._protocol = protocol
        self._closing = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            self._tunnel.send(frames.Kind.DATA, self._stream, bytes(view[start : start + CHUNK]))

    def close(self) -> None:
        if not self._closing:
            self._tunnel.send(frames.Kind.CLOSE, self._stream)
            self._ended(None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        if not self._closing:
            self._tunnel.send(frames.Kind.PAUSE, self._stream)

    def resume_reading(self) -> None:
        if not self._closing:
            self._tunnel.send(frames.Kind.RESUME, self._stream)

    def is_reading(self) -> bool:
        return not self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("tunnel", self._stream)}.get(name, default)

    def received(self, frame: frames.Frame) -> None:
        """A frame of this stream from the edge."""
        if frame.kind is frames.Kind.DATA and not self._closing:
            self._protocol.data_received(frame.payload)
        elif frame.kind is frames.Kind.OPENED and not self.opened.done():
            self.opened.set_result(None)
        elif frame.kind is frames.Kind.CLOSE:
            reason = frame.payload.decode(errors="replace")
            self._ended(ConnectionResetError(reason) if reason else None)
        # PAUSE/RESUME from the edge: requests are written whole, nothing to hold back here.

    def _ended(self, error: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        self._tunnel.forget(self._stream)
        if not self.opened.done():
            self.opened.set_exception(error or ConnectionResetError("closed before it opened"))
            self.opened.exception()  # retrieved: a stream refused is not an unhandled error
        # Later, as asyncio's own transports do: never inside the caller's close().
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, error)


class Tunnel:
    """One edge's WebSocket: its streams and the order frames go out in."""

    def __init__(self, cluster: str, connection: ServerConnection) -> None:
        self.cluster = cluster
        self._connection = connection
        self._streams: dict[int, StreamTransport] = {}
        self._next = 1
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False

    @property
    def streams(self) -> int:
        return len(self._streams)

    def send(self, kind: frames.Kind, stream: int, payload: bytes = b"") -> None:
        if not self.closed:
            self._outbox.put_nowait(frames.encode(kind, stream, payload))

    def forget(self, stream: int) -> None:
        self._streams.pop(stream, None)

    async def open(self, origin: Origin, timeout: float) -> Conn:
        """A connection to `origin` carried by this tunnel, once the edge has connected it."""
        stream = self._next
        self._next = self._next % frames.MAX_STREAM + 1
        conn = Conn(origin)
        transport = StreamTransport(self, stream, conn)
        self._streams[stream] = transport
        conn.connection_made(transport)
        self.send(frames.Kind.OPEN, stream, frames.target(origin.host, origin.port))
        where = f"{origin.host}:{origin.port} through the tunnel of {self.cluster}"
        try:
            await asyncio.wait_for(asyncio.shield(transport.opened), timeout)
        except TimeoutError:
            transport.close()
            raise UpstreamError(
                "connect", f"connecting to {where} took over {timeout:g} s", before_response=True
            ) from None
        except ConnectionResetError as error:
            raise UpstreamError(
                "connect", f"cannot connect to {where}: {error}", before_response=True
            ) from None
        return conn

    async def run(self) -> None:
        """Carry frames both ways until the WebSocket closes; then break every stream."""
        writer = asyncio.create_task(self._write())
        try:
            async for message in self._connection:
                self._dispatch(message)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._outbox.put_nowait(None)
            writer.cancel()
            for transport in list(self._streams.values()):
                transport.received(frames.Frame(frames.Kind.CLOSE, 0, b"the tunnel closed"))

    def _dispatch(self, message: bytes | str) -> None:
        try:
            frame = frames.decode(message)
        except frames.FrameError as error:
            logs.event(log, "tunnel frame refused", level=logging.WARNING,
                       cluster=self.cluster, error=str(error))  # fmt: skip
            return
        transport = self._streams.get(frame.stream)
        if transport is not None:
            transport.received(frame)

    async def _write(self) -> None:
        while (message := await self._outbox.get()) is not None:
            try:
                await self._connection.send(message)
            except ConnectionClosed:
                return


class TunnelHub:
    """The tunnels up now, by cluster; the connection pool's dialer for their engines."""

    def __init__(
        self,
        authorize: Authorize,
        metrics: GatewayMetrics | None = None,
        on_up: Callable[[str], None] | None = None,
    ) -> None:
        self._authorize = authorize
        self._metrics = metrics
        self._on_up = on_up
        """Told a cluster's tunnel came up: idle direct connections there are closed."""
        self._tunnels: dict[str, list[Tunnel]] = {}
        self._server: Server | None = None

    def live(self, cluster: str) -> Tunnel | None:
        """The cluster's tunnel carrying the fewest streams, if one is up."""
        tunnels = [t for t in self._tunnels.get(cluster, ()) if not t.closed]
        return min(tunnels, key=lambda t: t.streams) if tunnels else None

    def clusters(self) -> list[str]:
        return sorted(c for c in self._tunnels if self.live(c) is not None)

    async def dial(self, origin: Origin, timeout: float) -> Conn | None:
        """A connection through the tunnel of the origin's cluster; None when it has none."""
        tunnel = self.live(origin.cluster) if origin.cluster else None
        if tunnel is None:
            return None
        if self._metrics is not None:
            self._metrics.tunnel_streams.inc((origin.cluster,))
        return await tunnel.open(origin, timeout)

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen for edges; returns the port (0 picks a free one)."""
        self._server = await serve(
            self._handle, host, port, ssl=tls, process_request=self._check,
            max_size=MAX_MESSAGE, ping_interval=PING_SECONDS, compression=None,
        )  # fmt: skip
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse, before the upgrade, a request that is not an edge's."""
        if request.path != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"tunnels are at {PATH}\n")
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        cluster = self._authorize(token) if token else None
        if cluster is None:
            return connection.respond(
                HTTPStatus.UNAUTHORIZED,
                "an edge authenticates with a gateway key naming its cluster\n",
            )
        connection.cluster = cluster  # type: ignore[attr-defined]
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        cluster: str = connection.cluster  # type: ignore[attr-defined]
        tunnel = Tunnel(cluster, connection)
        self._tunnels.setdefault(cluster, []).append(tunnel)
        self._count(cluster)
        if self._on_up is not None:
            self._on_up(cluster)
        peer = connection.remote_address
        logs.event(log, "tunnel up", cluster=cluster, peer=str(peer))
        try:
            await tunnel.run()
        finally:
            self._tunnels[cluster] = [t for t in self._tunnels[cluster] if t is not tunnel]
            self._count(cluster)
            logs.event(log, "tunnel down", cluster=cluster, peer=str(peer))

    def _count(self, cluster: str) -> None:
        if self._metrics is not None:
            self._metrics.tunnels.set((cluster,), len(self._tunnels.get(cluster, ())))
