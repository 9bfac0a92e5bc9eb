"""A hop between sglang-router and the reference engines that drops SGLang's extra fields.

sglang-router (0.3.2) re-serialises every chat request with SGLang-only fields set to values
that ask for nothing (`no_stop_trim: false`, `separate_reasoning: true`, ...). The reference
engine refuses fields it does not know, as OpenAI does, so without this hop every request
answers 400. Each `--map PORT=URL` listens on PORT and forwards to the engine at URL: the
request body minus those fields (only where they hold the do-nothing value), one request per
connection (`Connection: close` both ways), the answer streamed back byte for byte but for one
header naming the replica, as our gateway's (`x-inferplane-endpoint: eN`, N the map's place;
sglang-router passes it on). Costs the peer one loopback hop per request. Standalone (stdlib
only): `python bench/routing/shim.py --map PORT=URL ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
from urllib.parse import urlsplit

SGLANG_NO_OPS: dict[str, object] = {
    "no_stop_trim": False,
    "separate_reasoning": True,
    "stream_reasoning": True,
    "return_hidden_states": False,
}
"""The fields sglang-router adds, with the values that change nothing without SGLang."""
DROPPED_HEADERS = (b"content-length", b"connection", b"keep-alive")
REPLICA_HEADER = b"x-inferplane-endpoint"


def strip(body: bytes) -> bytes:
    """The body without SGLang's no-op fields; unchanged when it has none or is not JSON."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    kept = {k: v for k, v in data.items() if not (k in SGLANG_NO_OPS and SGLANG_NO_OPS[k] == v)}
    return body if len(kept) == len(data) else json.dumps(kept).encode()


def rewrite_head(head: bytes, length: int) -> bytes:
    """The request head with its own Content-Length and `Connection: close`."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [line for line in lines[1:] if header_name(line) not in DROPPED_HEADERS]
    extra = [b"Content-Length: %d" % length, b"Connection: close"]
    return b"\r\n".join([lines[0], *kept, *extra]) + b"\r\n\r\n"


def tag(head: bytes, replica: str) -> bytes:
    """A response's start with the replica's header after its status line."""
    end = head.index(b"\r\n") + 2
    return head[:end] + REPLICA_HEADER + b": " + replica.encode() + b"\r\n" + head[end:]


def header_name(line: bytes) -> bytes:
    return line.partition(b":")[0].strip().lower()


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        if header_name(line) == b"content-length":
            return int(line.partition(b":")[2].strip())
    return 0


async def relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    upstream: tuple[str, int],
    replica: str,
) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        body = strip(await reader.readexactly(content_length(head)))
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        try:
            up_writer.write(rewrite_head(head, len(body)) + body)
            writer.write(tag(await up_reader.readuntil(b"\r\n"), replica))
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def serve(mapping: dict[int, tuple[str, int]]) -> None:
    for index, (port, upstream) in enumerate(mapping.items()):
        handle = functools.partial(relay, upstream=upstream, replica=f"e{index}")
        await asyncio.start_server(handle, "127.0.0.1", port)
    print(f"shim listening on {sorted(mapping)}", flush=True)
    await asyncio.Event().wait()


def parse_map(text: str) -> tuple[int, tuple[str, int]]:
    port, _, url = text.partition("=")
    parts = urlsplit(url)
    return int(port), (parts.hostname or "127.0.0.1", parts.port or 80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", action="append", required=True, help="PORT=URL, repeated")
    args = parser.parse_args()
    asyncio.run(serve(dict(parse_map(m) for m in args.map)))


if __name__ == "__main__":
    main()
