"""A minimal HTTP/1.1 client for one newline-delimited JSON stream, cheap per event.

httpx costs tens of microseconds a chunk; with 100 watchers on a 2-core machine that client
cost competes with the control plane for CPU and shows up as watch latency. This protocol
only stamps each arrival, undoes the chunked framing and hands whole lines on: parsing the
JSON is left to after the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

LineHandler = Callable[[bytes, float], bool]
"""Called with each line and its arrival time; True ends the stream."""


class StreamError(Exception):
    """The server answered other than 200 with a chunked body, or the stream broke."""


class _Protocol(asyncio.Protocol):
    def __init__(self, on_line: LineHandler) -> None:
        loop = asyncio.get_running_loop()
        self.status: asyncio.Future[int] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()
        self._on_line = on_line
        self._buffer = bytearray()
        self._lines = bytearray()
        self._in_body = False
        self._chunked = False

    def data_received(self, data: bytes) -> None:
        at = time.monotonic()
        self._buffer += data
        if not self._in_body and not self._read_head():
            return
        if self._chunked:
            self._read_chunks(at)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.status, self.ended):
            if not future.done():
                future.set_exception(StreamError(f"connection closed: {exc!r}"))

    def _read_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        self._in_body = True
        status = int(head.split(" ", 2)[1])
        self._chunked = "transfer-encoding: chunked" in head.lower()
        if status == 200 and not self._chunked:
            self.status.set_exception(StreamError("a 200 without a chunked body"))
        else:
            self.status.set_result(status)
        return True

    def _read_chunks(self, at: float) -> None:
        while not self.ended.done():
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self._buffer[:line_end].split(b";")[0], 16)
            start = line_end + 2
            if len(self._buffer) < start + size + 2:
                return
            payload = self._buffer[start : start + size]
            del self._buffer[: start + size + 2]
            if size == 0:
                self.ended.set_exception(StreamError("the server ended the stream"))
                return
            self._feed(bytes(payload), at)

    def _feed(self, payload: bytes, at: float) -> None:
        self._lines += payload
        *lines, rest = self._lines.split(b"\n")
        self._lines = bytearray(rest)
        for line in lines:
            if line and self._on_line(bytes(line), at):
                self.ended.set_result(None)
                return

    def body_so_far(self) -> bytes:
        return bytes(self._buffer[:500])


class Stream:
    """One open GET whose body is read line by line until the handler says stop."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def finished(self) -> None:
        """Wait until the handler has said stop; raises StreamError if the stream broke."""
        await self._protocol.ended

    def close(self) -> None:
        self._transport.close()


async def open_stream(url: str, *, token: str, on_line: LineHandler) -> Stream:
    """GET `url` (http only) and wait for a 200 answer; raises StreamError otherwise."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/x-ndjson\r\n\r\n"
    )
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(lambda: _Protocol(on_line), host, port)
    transport.write(request.encode("latin-1"))
    status = await protocol.status
    if status != 200:
        await asyncio.sleep(0.1)  # let the error body arrive, for the message
        transport.close()
        raise StreamError(f"GET {target} answered {status}: {protocol.body_so_far()!r}")
    return Stream(transport, protocol)
