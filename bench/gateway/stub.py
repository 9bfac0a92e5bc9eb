"""An OpenAI-shaped upstream far faster than any gateway: uvloop, httptools, asyncio.Protocol.

POST /v1/chat/completions and /v1/completions answer one fixed small completion (with `usage`);
with `"stream": true` in the body they answer an SSE stream of `chunks` events and
`data: [DONE]`. Every stream's events go out on one shared tick every `chunk_delay` seconds, as
an engine's continuous batch emits one token per step for every running sequence: a stream's
first event waits for the next tick, so its events leave exactly `chunk_delay` apart. Bodies of
any size are read and thrown away. GET /v1/models names the one model; any other GET is 200 `{}`
(health checks). One process listens on several ports, one "upstream" per port.

    python -m bench.gateway.stub --ports 9001,9002 [--chunks 16] [--chunk-delay 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from dataclasses import dataclass, field
from typing import cast

import httptools
import orjson
import uvloop

MODEL = "stub"
STREAM_MARKERS = (b'"stream":true', b'"stream": true')
TAIL = max(len(m) for m in STREAM_MARKERS)
"""Bytes of the previous body piece kept, so a marker split across two pieces is still seen."""
USAGE = {"prompt_tokens": 8, "completion_tokens": 8, "total_tokens": 16}


def response(status: str, content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def json_response(value: object, status: str = "200 OK") -> bytes:
    return response(status, "application/json", orjson.dumps(value))


def completion(chat: bool) -> bytes:
    """The one non-streamed answer, for chat or for text completions."""
    if chat:
        message = {"role": "assistant", "content": "stub answer"}
        choice: dict[str, object] = {"index": 0, "message": message, "finish_reason": "stop"}
    else:
        choice = {"index": 0, "text": "stub answer", "finish_reason": "stop", "logprobs": None}
    kind = "chat.completion" if chat else "text_completion"
    body = {"id": "stub-1", "object": kind, "created": 0, "model": MODEL, "choices": [choice]}
    return json_response({**body, "usage": USAGE})


def sse_chunk(event: dict[str, object]) -> bytes:
    """One SSE event as one HTTP/1.1 chunk."""
    data = b"data: " + orjson.dumps(event) + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stream_events(chat: bool, count: int) -> list[bytes]:
    """The stream's HTTP chunks, one per tick; the last one also carries [DONE] and the end."""
    kind = "chat.completion.chunk" if chat else "text_completion"
    events = []
    for index in range(count):
        last = index == count - 1
        if chat:
            delta = {"role": "assistant", "content": "tok "} if index == 0 else {"content": "tok "}
            choice: dict[str, object] = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": "tok ", "logprobs": None}
        choice["finish_reason"] = "stop" if last else None
        event = {"id": "stub-1", "object": kind, "created": 0, "model": MODEL, "choices": [choice]}
        events.append(sse_chunk({**event, "usage": USAGE} if last else event))
    done = b"data: [DONE]\n\n"
    events[-1] += f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n"
    return events


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


@dataclass
class Stream:
    transport: asyncio.Transport
    events: list[bytes]
    sent: int = 0


@dataclass
class Ticker:
    """Writes the next event of every running stream once per tick; idle while none runs."""

    loop: asyncio.AbstractEventLoop
    delay: float
    streams: list[Stream] = field(default_factory=list)
    next_tick: float = 0.0
    armed: bool = False

    def add(self, stream: Stream) -> None:
        self.streams.append(stream)
        if not self.armed:
            self.armed = True
            self.next_tick = self.loop.time() + self.delay
            self.loop.call_at(self.next_tick, self.tick)

    def tick(self) -> None:
        running = []
        for stream in self.streams:
            if stream.transport.is_closing():
                continue
            stream.transport.write(stream.events[stream.sent])
            stream.sent += 1
            if stream.sent < len(stream.events):
                running.append(stream)
        self.streams = running
        self.armed = bool(running)
        if running:
            self.next_tick = max(self.next_tick + self.delay, self.loop.time())
            self.loop.call_at(self.next_tick, self.tick)


@dataclass(frozen=True)
class Answers:
    """Every reply the stub sends, built once."""

    chat: bytes
    text: bytes
    chat_stream: list[bytes]
    text_stream: list[bytes]
    models: bytes = json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
    empty: bytes = json_response({})
    not_found: bytes = json_response({"error": "not found"}, "404 Not Found")

    @classmethod
    def build(cls, chunks: int) -> Answers:
        chat, text = stream_events(True, chunks), stream_events(False, chunks)
        return cls(completion(True), completion(False), chat, text)


class StubProtocol(asyncio.Protocol):
    """One client connection: parse requests, drop bodies, answer from `Answers`."""

    def __init__(self, answers: Answers, ticker: Ticker) -> None:
        self.answers, self.ticker = answers, ticker
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url, self.tail, self.stream = b"", b"", False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.tail, self.stream = b"", b"", False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        if not self.stream:
            seam = self.tail + body[:TAIL]
            self.stream = any(m in body or m in seam for m in STREAM_MARKERS)
            self.tail = body[-TAIL:]

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        path = self.url.split(b"?", 1)[0]
        if self.parser.get_method() == b"POST" and path.endswith(b"/completions"):
            chat = path.endswith(b"/chat/completions")
            if self.stream:
                transport.write(STREAM_HEAD)
                events = self.answers.chat_stream if chat else self.answers.text_stream
                self.ticker.add(Stream(transport, events))
            else:
                transport.write(self.answers.chat if chat else self.answers.text)
        elif self.parser.get_method() == b"GET":
            models = path.endswith(b"/models")
            transport.write(self.answers.models if models else self.answers.empty)
        else:
            transport.write(self.answers.not_found)
        if not self.parser.should_keep_alive():
            transport.close()


async def start(
    ports: list[int],
    *,
    chunks: int,
    chunk_delay: float,
    host: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
) -> list[asyncio.Server]:
    """The stub listening on each port (0: any free one) on the running loop, over TLS with
    `tls` (the load generator's TLS is tested so)."""
    loop = asyncio.get_running_loop()
    answers, ticker = Answers.build(chunks), Ticker(loop, chunk_delay)
    return [
        await loop.create_server(
            lambda: StubProtocol(answers, ticker), host, port, backlog=4096, ssl=tls
        )
        for port in ports
    ]


async def serve(ports: list[int], *, chunks: int, chunk_delay: float, host: str) -> None:
    servers = await start(ports, chunks=chunks, chunk_delay=chunk_delay, host=host)
    print(f"stub listening on {host}:{','.join(map(str, ports))}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", required=True, help="comma-separated")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--chunks", type=int, default=16, help="events per stream")
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="seconds between events")
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    uvloop.run(serve(ports, chunks=args.chunks, chunk_delay=args.chunk_delay, host=args.host))


if __name__ == "__main__":
    main()
