"""The gateway's HTTP/1.1 server: an asyncio.Protocol fed to httptools' request parser.

One handler runs per request (a `Flow`, not a Task: flow.py says why); requests pipelined on
one connection wait their turn. A
client that disconnects cancels its handler at once, which closes the upstream connection the
handler holds (so the engine aborts the request and frees its KV blocks).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import cast

import httptools

from inferplane.gateway.wire.flow import Flow

MAX_BODY = 64 * 1024 * 1024
"""Largest request body accepted (a 216 KB prompt is far below it)."""

MAX_HEAD = 64 * 1024
"""Largest request line and headers, together, accepted (a 431 past it; nginx allows 32 KB,
hyper 400 KB). httptools buffers a head without bound, so the count is kept here."""

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a client may take over its TLS handshake before its connection is dropped."""

Header = tuple[bytes, bytes]

_STATUS_LINES = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}


class Request:
    """One parsed request; header names are lower-case."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "peer", "query")

    def __init__(self, method: bytes, path: bytes, query: bytes | None, peer: str = "") -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.keep_alive = True
        self.peer = peer
        """The client's address (the connection's, made once per connection)."""

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name)


class ClientGone(Exception):
    """The client closed its connection while we were writing to it."""


class Responder:
    """Writes one response: whole (`send`) or streamed with chunked encoding."""

    __slots__ = ("_conn", "_keep_alive", "started", "status")

    def __init__(self, conn: Connection, keep_alive: bool) -> None:
        self._conn = conn
        self._keep_alive = keep_alive
        self.started = False
        self.status = 0

    def send(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        headers: Iterable[Header] = (),
    ) -> None:
        """The whole response at once, with its length."""
        self.started = True
        self.status = status
        head = [_STATUS_LINES[status], b"content-type: ", content_type, b"\r\n"]
        head += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        if not self._keep_alive:
            head.append(b"connection: close\r\n")
        for name, value in headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        head.append(body)
        self._conn.write(b"".join(head))

    def start(self, status: int, content_type: bytes, headers: Iterable[Header] = ()) -> None:
        """The head of a chunked response; trailers may follow the last chunk."""
        self.started = True
        self.status = status
        head = [_STATUS_LINES[status], b"content-type: ", content_type, b"\r\n"]
        head.append(b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n")
        if not self._keep_alive:
            head.append(b"connection: close\r\n")
        for name, value in headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        self._conn.write(b"".join(head))

    def push(self, data: bytes) -> bool:
        """One chunk, written now, without waiting; False when the client's buffer is full
        (the caller stops reading its source until `on_drained` fires)."""
        if data:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data))
        return not self._conn.congested

    def on_drained(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the client has caught up."""
        self._conn.resumers.append(callback)

    async def chunk(self, data: bytes) -> None:
        """One chunk, written now (never coalesced); waits while the client reads slowly."""
        if data:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data))
            await self._conn.drained()

    def end(self, trailers: Iterable[Header] = ()) -> None:
        """The last chunk, with trailers if any."""
        tail = [b"0\r\n"]
        for name, value in trailers:
            tail += [name, b": ", value, b"\r\n"]
        tail.append(b"\r\n")
        self._conn.write(b"".join(tail))


Handler = Callable[[Request, Responder], Awaitable[None] | None]
"""Answers one request: at once (returning None), or in the awaitable it returns."""


class Connection(asyncio.Protocol):
    """One client connection: parses requests and runs the handler on each, in order."""

    def __init__(self, handler: Handler, on_error: Callable[[Request, Responder], None]) -> None:
        self._handler = handler
        self._on_error = on_error
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._current: Request | None = None
        self._pending: deque[Request] = deque()
        self._task: Flow | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._url = b""
        self._paused: asyncio.Future[None] | None = None
        self.resumers: list[Callable[[], None]] = []
        self._header_name = b""
        self._peer = ""
        self._head_open = False
        """Between a message's first byte and the end of its headers."""
        self._head_size = 0
        """The current head's URL and finished headers, in bytes."""
        self._head_reads = 0
        """Bytes of reads that fell wholly inside the current head (one header httptools
        is still gathering, however long, counts here)."""
        self._messages = 0
        self._failed: tuple[int, bytes] | None = None
        """The error that broke the stream, answered after the requests before it."""

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peername = transport.get_extra_info("peername")
        self._peer = str(peername[0]) if isinstance(peername, tuple) else ""

    def data_received(self, data: bytes) -> None:
        if self._failed is not None:
            return  # a broken stream: its error goes out after the requests before it
        in_head, messages = self._head_open, self._messages
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"upgrades are not supported")
        except httptools.HttpParserError as error:
            # httptools wraps an exception raised in a callback, keeping it as the context
            if isinstance(error.__context__, _TooLarge):
                self._fail(413, b"request body larger than 64 MiB")
            elif isinstance(error.__context__, _HeadTooLarge):
                self._fail(431, b"request line and headers larger than 64 KiB")
            else:
                self._fail(400, f"malformed HTTP request: {error}".encode())
        except _TooLarge:
            self._fail(413, b"request body larger than 64 MiB")
        except _HeadTooLarge:
            self._fail(431, b"request line and headers larger than 64 KiB")
        else:
            if in_head and self._head_open and messages == self._messages:
                self._count_head_read(len(data))  # all of `data` was one unfinished head

    def _count_head_read(self, size: int) -> None:
        """A 431 once the reads inside one unfinished head pass MAX_HEAD: reads that began
        and ended inside it only, so that a body never counts."""
        self._head_reads += size
        if self._head_reads > MAX_HEAD:
            self._fail(431, b"request line and headers larger than 64 KiB")

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._paused is not None and not self._paused.done():
            self._paused.set_exception(ClientGone())

    def pause_writing(self) -> None:
        if self._paused is None or self._paused.done():
            self._paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)
        resumers, self.resumers = self.resumers, []
        for resume in resumers:
            resume()

    @property
    def congested(self) -> bool:
        return self._paused is not None and not self._paused.done()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge()

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._current is not None
        self._current.headers[name.lower()] = value
        self._head_size += len(name) + len(value) + 4  # with ": " and CRLF
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge()

    def on_message_begin(self) -> None:
        self._head_open, self._head_size, self._head_reads = True, 0, 0
        self._messages += 1
        self._url = b""
        self._body = []
        self._size = 0
        self._current = Request(b"", b"", None, self._peer)

    def on_headers_complete(self) -> None:
        assert self._current is not None
        parsed = httptools.parse_url(self._url)
        self._current.method = self._parser.get_method()
        self._current.path = parsed.path
        self._current.query = parsed.query
        self._current.keep_alive = self._parser.should_keep_alive()
        self._head_open = False
        length = self._current.headers.get(b"content-length")
        if length is not None and int(length) > MAX_BODY:
            raise _TooLarge()  # refused now, not after the client sent 64 MiB of it

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            raise _TooLarge()
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = self._current
        assert request is not None
        request.body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._current = None
        if self._task is None:
            self._run(request)
        else:
            self._pending.append(request)

    # serving
    def write(self, data: bytes) -> None:
        if self._transport is None:
            raise ClientGone()
        self._transport.write(data)

    async def drained(self) -> None:
        if self._transport is None:
            raise ClientGone()
        if self._paused is not None and not self._paused.done():
            await self._paused

    def _run(self, request: Request, *, now: bool = True) -> None:
        """Serve `request`: its first step now, inside the callback that parsed it, or (a
        pipelined request that waited its turn) on the next loop turn, so that a long
        pipeline of answers made at once never nests one handler inside the last."""
        responder = Responder(self, request.keep_alive)
        loop = asyncio.get_running_loop()
        flow = self._task = Flow(self._serve(request, responder), loop)
        if now:
            flow.start()
        else:
            loop.call_soon(flow.start)

    async def _serve(self, request: Request, responder: Responder) -> None:
        try:
            pending = self._handler(request, responder)
            if pending is not None:
                await pending
        except (ClientGone, asyncio.CancelledError):
            self._close()
            return
        except Exception:
            if responder.started:
                self._close()  # a broken stream cannot be mended: the client sees the cut
                return
            self._on_error(request, responder)
        self._task = None
        if not request.keep_alive:
            self._close()
        elif self._pending:
            self._run(self._pending.popleft(), now=False)
        elif self._failed is not None:
            self._reply_and_close(*self._failed)

    def _fail(self, status: int, message: bytes) -> None:
        """Answer a broken stream with `status` and close, after the requests parsed before
        it (responses go out in the order of requests); nothing more is read meanwhile."""
        if self._task is None:
            self._reply_and_close(status, message)
            return
        self._failed = (status, message)
        if self._transport is not None:
            self._transport.pause_reading()

    def _reply_and_close(self, status: int, message: bytes) -> None:
        if self._transport is not None:
            responder = Responder(self, keep_alive=False)
            body = b'{"error":{"message":"%s","type":"invalid_request_error","param":null,'
            body += b'"code":null}}'
            responder.send(status, body % message.replace(b'"', b"'"))
            self._close()

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class _TooLarge(Exception):
    pass


class _HeadTooLarge(Exception):
    pass


async def serve(
    handler: Handler,
    on_error: Callable[[Request, Responder], None],
    host: str,
    port: int,
    *,
    backlog: int = 2048,
    tls: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Listen on host:port, over TLS with `tls`; the returned server is already serving.

    TLS is the event loop's own transport under the same protocol: the plain path is
    untouched, and over TLS every byte the protocol sees has been decrypted already."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: Connection(handler, on_error),
        host,
        port,
        backlog=backlog,
        reuse_address=True,
        ssl=tls,
        ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls is not None else None,
    )
