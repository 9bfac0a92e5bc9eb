"""The served model name of an endpoint, asked of a real loopback upstream."""

from __future__ import annotations

import asyncio
import dataclasses

from inferplane.gateway import upstreams
from inferplane.gateway.table import EndpointEntry
from inferplane.gateway.wire.upstream import Origin, Pool


async def _upstream(
    models_status: int, asked: list[bytes], writers: list[asyncio.StreamWriter]
) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while line := await reader.readline():
            asked.append(line.split(b" ")[1])
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            body = b'{"data":[{"id":"served"}]}' if models_status == 200 else b"{}"
            head = f"HTTP/1.1 {models_status} X\r\ncontent-length: {len(body)}\r\n\r\n"
            writer.write(head.encode() + body)
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


def _endpoint(port: int) -> EndpointEntry:
    fields = {f.name for f in dataclasses.fields(EndpointEntry)}
    values: dict[str, object] = {
        "namespace": "default",
        "name": "e",
        "origin": Origin.parse(f"http://127.0.0.1:{port}"),
        "deployment": "d",
        "external": False,
        "region": "",
        "ready": True,
        "upstream_model": None,
        "auth": None,
    }
    return EndpointEntry(**{k: v for k, v in values.items() if k in fields})  # type: ignore[arg-type]


async def _names(models_status: int, times: int) -> tuple[list[str | None], list[bytes]]:
    asked: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []
    server = await _upstream(models_status, asked, writers)
    port = server.sockets[0].getsockname()[1]
    sender = upstreams.Upstreams(Pool())
    endpoint = _endpoint(port)
    try:
        names = [await sender.served_name(endpoint) for _ in range(times)]
    finally:
        sender.pool.close()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)  # let both ends see the close before the loop ends
    return names, asked


def test_a_served_name_is_asked_once_and_cached() -> None:
    names, asked = asyncio.run(_names(200, 5))
    assert names == ["served"] * 5
    assert asked == [b"/v1/models"]


def test_an_engine_that_cannot_say_its_name_is_not_asked_on_every_request() -> None:
    names, asked = asyncio.run(_names(404, 5))
    assert names == [None] * 5, "the client's name passes unchanged"
    assert asked == [b"/v1/models"], "asked once per retry window, not per request"
