"""What the HTTP server does with framing the fuzzer (tests/integration/test_gateway_fuzz.py)
found wanting: an error after pipelined requests answered before theirs, heads without bound,
a body announced beyond the limit."""

from __future__ import annotations

import asyncio
import re

import pytest

from inferplane.gateway.wire import server
from tests.unit.gateway.test_wire import FakeTransport, Handler, echo, on_error, post, settle


class PausableTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def connect(handler: Handler = echo) -> tuple[server.Connection, PausableTransport]:
    conn = server.Connection(handler, on_error)
    transport = PausableTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def slow_echo(request: server.Request, out: server.Responder) -> None:
    await asyncio.sleep(0.01)  # an upstream's time: the next bytes arrive before the answer
    await echo(request, out)


def statuses(output: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", output)


def test_an_error_after_pipelined_requests_waits_for_their_answers() -> None:
    async def scenario() -> PausableTransport:
        conn, transport = connect(slow_echo)
        raw = post(b"/a", b"1", tag=b"a") + post(b"/b", b"2", tag=b"b") + b"NOT HTTP\r\n\r\n"
        conn.data_received(raw)
        assert not transport.reading, "nothing more is read once the stream is broken"
        for _ in range(20):
            await asyncio.sleep(0.01)
        return transport

    transport = asyncio.run(scenario())
    assert statuses(transport.output) == [b"200", b"200", b"400"]
    assert transport.output.index(b"/a a 1") < transport.output.index(b"/b b 2")
    assert transport.closed


def test_an_error_with_nothing_in_flight_is_answered_at_once() -> None:
    conn, transport = connect()
    conn.data_received(b"GET / HTTP/9.9\r\n\r\n")
    assert statuses(transport.output) == [b"400"] and transport.closed


def test_a_head_over_the_limit_is_a_431(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_HEAD", 1024)

    async def scenario() -> PausableTransport:
        conn, transport = connect()
        conn.data_received(b"POST /x HTTP/1.1\r\nX-Big: ")
        fed = 0
        while not transport.closed and fed < 1 << 20:
            conn.data_received(b"a" * 100)
            fed += 100
        await settle()
        assert fed <= 1024 + 100, "refused once the limit was passed, not after the whole head"
        return transport

    transport = asyncio.run(scenario())
    assert transport.output.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert transport.closed


def test_many_small_headers_count_towards_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_HEAD", 1024)
    conn, transport = connect()
    conn.data_received(b"POST /x HTTP/1.1\r\n")
    for i in range(1000):
        if transport.closed:
            break
        conn.data_received(b"X-H%d: v\r\n" % i)
    assert statuses(transport.output) == [b"431"]


def test_a_head_under_the_limit_with_a_large_body_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only bytes of an unfinished head count: a body in the same reads does not."""
    monkeypatch.setattr(server, "MAX_HEAD", 1024)

    async def scenario() -> PausableTransport:
        conn, transport = connect()
        raw = post(b"/a", b"x" * 5000, tag=b"a") + post(b"/b", b"y" * 5000, tag=b"b")
        for at in range(0, len(raw), 3000):
            conn.data_received(raw[at : at + 3000])
        await settle()
        return transport

    assert statuses(asyncio.run(scenario()).output) == [b"200", b"200"]


def test_a_body_announced_over_the_limit_is_a_413_before_it_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "MAX_BODY", 16)
    conn, transport = connect()
    conn.data_received(b"POST /x HTTP/1.1\r\ncontent-length: 17\r\n\r\n")
    assert statuses(transport.output) == [b"413"] and transport.closed


def test_a_body_at_the_limit_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_BODY", 16)

    async def scenario() -> PausableTransport:
        conn, transport = connect()
        conn.data_received(post(b"/x", b"x" * 16))
        await settle()
        return transport

    assert statuses(asyncio.run(scenario()).output) == [b"200"]


def test_a_head_over_the_limit_in_one_read_is_a_431(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole headers are counted exactly, however the reads fall."""
    monkeypatch.setattr(server, "MAX_HEAD", 1024)
    conn, transport = connect()
    conn.data_received(post(b"/x", b"{}", tag=b"t" * 1100))
    assert statuses(transport.output) == [b"431"] and transport.closed


def test_a_url_over_the_limit_is_a_431(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_HEAD", 1024)
    conn, transport = connect()
    conn.data_received(post(b"/" + b"u" * 1100, b"{}"))
    assert statuses(transport.output) == [b"431"] and transport.closed
