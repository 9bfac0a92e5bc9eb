"""The HTTP/1.1 layer: upstream origins, and the server's connection fed through a fake
transport (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from inferplane.gateway.wire import server
from inferplane.gateway.wire.upstream import Origin


@pytest.mark.parametrize(
    ("url", "origin", "host_header"),
    [
        ("http://engine", Origin("engine", 80, False, b""), b"engine"),
        ("http://10.0.0.5:8001", Origin("10.0.0.5", 8001, False, b""), b"10.0.0.5:8001"),
        ("https://api.example.com", Origin("api.example.com", 443, True, b""), b"api.example.com"),
        ("https://x.io:8443/openai/", Origin("x.io", 8443, True, b"/openai"), b"x.io:8443"),
        ("http://h:80/a/b", Origin("h", 80, False, b"/a/b"), b"h"),
        ("https://h:80/", Origin("h", 80, True, b""), b"h:80"),
        ("http://[::1]:8000", Origin("::1", 8000, False, b""), b"[::1]:8000"),
    ],
)
def test_origin_parse(url: str, origin: Origin, host_header: bytes) -> None:
    assert Origin.parse(url) == origin
    assert Origin.parse(url).host_header == host_header


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 50000) if name == "peername" else default

    @property
    def output(self) -> bytes:
        return b"".join(self.written)


Handler = Callable[[server.Request, server.Responder], Awaitable[None]]


async def echo(request: server.Request, out: server.Responder) -> None:
    body = b"%s %s %s %s" % (request.method, request.path, request.headers[b"x-tag"], request.body)
    out.send(200, body, b"text/plain")


def on_error(request: server.Request, out: server.Responder) -> None:
    out.send(500, b"handler failed")


def connect(handler: Handler = echo) -> tuple[server.Connection, FakeTransport]:
    conn = server.Connection(handler, on_error)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def post(path: bytes, body: bytes, *, tag: bytes = b"t", close: bool = False) -> bytes:
    head = b"POST %s HTTP/1.1\r\nhost: gw\r\nX-Tag: %s\r\ncontent-length: %d\r\n" % (
        path,
        tag,
        len(body),
    )
    return head + (b"connection: close\r\n" if close else b"") + b"\r\n" + body


def response(status: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


def test_a_request_split_across_many_reads() -> None:
    async def scenario() -> FakeTransport:
        conn, transport = connect()
        raw = post(b"/v1/chat/completions?x=1", b'{"model": "m"}', tag=b"split")
        for i in range(len(raw)):
            conn.data_received(raw[i : i + 1])
        await settle()
        return transport

    transport = asyncio.run(scenario())
    assert transport.output == response(
        b"200 OK", b'POST /v1/chat/completions split {"model": "m"}'
    )
    assert not transport.closed, "keep-alive"


def test_pipelined_requests_are_answered_in_order() -> None:
    gate = asyncio.Event()

    async def slow_first(request: server.Request, out: server.Responder) -> None:
        if request.path == b"/first":
            await gate.wait()
        await echo(request, out)

    async def scenario() -> FakeTransport:
        conn, transport = connect(slow_first)
        conn.data_received(post(b"/first", b"1") + post(b"/second", b"2") + post(b"/third", b"3"))
        await settle()
        assert transport.written == [], "the second waits for the first"
        gate.set()
        await settle()
        return transport

    transport = asyncio.run(scenario())
    assert transport.output == b"".join(
        response(b"200 OK", b"POST /%s t %s" % (name, n))
        for name, n in ((b"first", b"1"), (b"second", b"2"), (b"third", b"3"))
    )


def test_a_failing_handler_gets_a_500_and_the_next_request_is_served() -> None:
    async def failing(request: server.Request, out: server.Responder) -> None:
        if request.path == b"/boom":
            raise RuntimeError("boom")
        await echo(request, out)

    async def scenario() -> FakeTransport:
        conn, transport = connect(failing)
        conn.data_received(post(b"/boom", b"") + post(b"/ok", b""))
        await settle()
        return transport

    output = asyncio.run(scenario()).output
    assert output.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert output.endswith(response(b"200 OK", b"POST /ok t "))


def test_connection_close_is_honoured() -> None:
    async def scenario() -> FakeTransport:
        conn, transport = connect()
        conn.data_received(post(b"/x", b"", close=True))
        await settle()
        return transport

    transport = asyncio.run(scenario())
    assert b"connection: close\r\n" in transport.output
    assert transport.closed


def test_a_body_over_the_limit_is_a_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_BODY", 16)
    served: list[bytes] = []

    async def record(request: server.Request, out: server.Responder) -> None:
        served.append(request.body)
        await echo(request, out)

    async def scenario() -> FakeTransport:
        conn, transport = connect(record)
        conn.data_received(post(b"/small", b"x" * 16))
        await settle()
        raw = post(b"/big", b"x" * 17)
        conn.data_received(raw[:-5])
        conn.data_received(raw[-5:])
        await settle()
        return transport

    transport = asyncio.run(scenario())
    assert served == [b"x" * 16]
    assert b"HTTP/1.1 413 Request Entity Too Large\r\n" in transport.output
    assert transport.closed


def test_malformed_http_is_a_400_and_the_connection_closes() -> None:
    async def scenario() -> FakeTransport:
        conn, transport = connect()
        conn.data_received(b"NOT HTTP AT ALL\r\n\r\n")
        conn.data_received(post(b"/after", b""))  # ignored: the connection is closed
        await settle()
        return transport

    transport = asyncio.run(scenario())
    assert transport.output.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"connection: close\r\n" in transport.output
    assert b"malformed HTTP request" in transport.output
    assert b"/after" not in transport.output
    assert transport.closed


def test_a_client_that_leaves_cancels_its_handler() -> None:
    cancelled = asyncio.Event()

    async def forever(request: server.Request, out: server.Responder) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def scenario() -> None:
        conn, _ = connect(forever)
        conn.data_received(post(b"/stream", b""))
        await settle()
        conn.connection_lost(None)
        await settle()
        assert cancelled.is_set()
        with pytest.raises(server.ClientGone):
            conn.write(b"late")

    asyncio.run(scenario())


def test_chunked_responses_are_framed() -> None:
    async def streaming(request: server.Request, out: server.Responder) -> None:
        out.start(200, b"text/event-stream", [(b"x-request-id", b"r1")])
        await out.chunk(b"data: 1\n\n")
        await out.chunk(b"")
        out.end([(b"x-inferplane-resumed", b"1")])

    async def scenario() -> FakeTransport:
        conn, transport = connect(streaming)
        conn.data_received(post(b"/s", b""))
        await settle()
        return transport

    output = asyncio.run(scenario()).output
    head, _, body = output.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head and b"x-request-id: r1" in head
    assert body == b"9\r\ndata: 1\n\n\r\n0\r\nx-inferplane-resumed: 1\r\n\r\n"


def test_each_request_knows_its_clients_address() -> None:
    async def peer(request: server.Request, out: server.Responder) -> None:
        out.send(200, request.peer.encode(), b"text/plain")

    async def scenario() -> FakeTransport:
        conn, transport = connect(peer)
        conn.data_received(post(b"/a", b"") + post(b"/b", b""))
        await settle()
        return transport

    transport = asyncio.run(scenario())
    assert transport.output == response(b"200 OK", b"127.0.0.1") * 2
