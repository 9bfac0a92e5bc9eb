"""The engines' load, read from their /metrics, refines the router's view of each endpoint,
whichever engine serves it: an Endpoint does not say, so the scrape's names tell."""

from __future__ import annotations

import asyncio

from inferplane.api import services
from inferplane.gateway import enginestats, table, upstreams
from inferplane.gateway.enginestats import EngineLoad, parse
from inferplane.gateway.router import Router
from inferplane.gateway.table import EndpointEntry, NsName, ServiceEntry, Table
from inferplane.gateway.wire.upstream import Origin, Pool
from inferplane.policy.routing.requests import RouteRequest
from tests.unit.api.test_enginemetrics import LLAMACPP_TEXT, SGLANG_TEXT, TGI_TEXT
from tests.unit.gateway.objects import endpoint, objects_of

EXPOSITION = b"""# HELP vllm:num_requests_running Requests in the running batch.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="demo"} 3.0
vllm:num_requests_waiting{engine="0",model_name="demo"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="demo"} 0.75
vllm:prompt_tokens_total{model_name="demo"} 120.0
"""


def test_parse_reads_running_waiting_and_kv_usage() -> None:
    assert parse(EXPOSITION) == EngineLoad(running=3, waiting=2, kv_usage=0.75)


def test_parse_tolerates_other_and_broken_lines() -> None:
    assert parse(b"vllm:num_requests_running{} nan-ish\nfoo 1\n") == EngineLoad()
    assert parse(b"vllm:gpu_cache_usage_perc 0.5\n") == EngineLoad(kv_usage=0.5)
    assert parse(b"\xff\xfe garbage\n") == EngineLoad()


def test_parse_reads_every_engines_names() -> None:
    assert parse(SGLANG_TEXT.encode()) == EngineLoad(running=2, waiting=5, kv_usage=0.5)
    assert parse(LLAMACPP_TEXT.encode()) == EngineLoad(running=1, waiting=2, kv_usage=0.125)
    assert parse(TGI_TEXT.encode()) == EngineLoad(running=4, waiting=1)


def _endpoint(name: str) -> EndpointEntry:
    return EndpointEntry("default", name, Origin("127.0.0.1", 1), "d", False, "", True, None, None)


def test_least_request_avoids_an_engine_busy_with_other_gateways_traffic() -> None:
    spec = services.ServiceSpec(routes=[services.Route(deployment="d")], strategy="least-request")
    service = ServiceEntry("default", "s", "s", spec)
    endpoints = (_endpoint("a"), _endpoint("b"))
    table = Table(
        endpoints={("default", "d"): endpoints},
        endpoints_by_name={("default", e.name): e for e in endpoints},
    )
    router = Router(region=None, seed=1)
    router.engine_load[("default", "a")] = EngineLoad(running=8, waiting=4)
    picks = {
        router.choose(
            table, service, RouteRequest(), 0.0, tried=set(), empty_routes=set()
        ).endpoint.name  # type: ignore[union-attr]
        for _ in range(20)
    }
    assert picks == {"b"}


SYSTEM = "inferplane-system"
LLAMA_TOKEN_SECRET = "engine-0b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"


async def _engine(
    text: str, writers: list[asyncio.StreamWriter], *, token: bytes | None = None
) -> asyncio.Server:
    """A loopback engine answering /metrics with `text`; with a token, 401 without it (as
    llama-server does)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.readline():
            head = []
            while (line := await reader.readline()) not in (b"\r\n", b""):
                head.append(line.lower().strip())
            allowed = token is None or b"authorization: bearer " + token in head
            body = text.encode() if allowed else b"unauthorized"
            status = "200 OK" if allowed else "401 Unauthorized"
            writer.write(f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n\r\n".encode())
            writer.write(body)
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def _scrape_once(
    servers: dict[str, asyncio.Server], tables: Table, writers: list[asyncio.StreamWriter]
) -> dict[NsName, EngineLoad]:
    """Runs the gateway's scrape loop until it has read every endpoint once."""
    sender = upstreams.Upstreams(Pool())
    loads: dict[NsName, EngineLoad] = {}
    task = asyncio.create_task(enginestats.scrape_forever(sender, lambda: tables, loads))
    try:

        async def settled() -> None:
            while len(loads) < len(servers):
                await asyncio.sleep(0.001)

        await asyncio.wait_for(settled(), timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sender.pool.close()
        for writer in writers:
            writer.close()
        for server in servers.values():
            server.close()
            await server.wait_closed()
        await asyncio.sleep(0.01)  # let both ends see the close before the loop ends
    return loads


def _url(server: asyncio.Server) -> str:
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _fleet() -> tuple[dict[NsName, EngineLoad], Table]:
    writers: list[asyncio.StreamWriter] = []
    servers = {
        "sglang-0": await _engine(SGLANG_TEXT, writers),
        "llama-0": await _engine(LLAMACPP_TEXT, writers, token=b"tok-llama"),
        "idle-0": await _engine("sglang:num_running_reqs 0\nsglang:num_queue_reqs 0\n", writers),
    }
    objects = objects_of(
        endpoint("sglang-0", "d", url=_url(servers["sglang-0"])),
        endpoint(
            "llama-0", "d", url=_url(servers["llama-0"]), engineTokenSecret=LLAMA_TOKEN_SECRET
        ),
        endpoint("idle-0", "d", url=_url(servers["idle-0"])),
    )
    objects.values[(SYSTEM, LLAMA_TOKEN_SECRET)] = ("5", {"token": "tok-llama"})
    built = table.build(objects)
    return await _scrape_once(servers, built, writers), built


def test_the_gateway_reads_sglang_and_llamacpp_endpoints_load() -> None:
    loads, built = asyncio.run(_fleet())
    assert loads == {
        ("default", "sglang-0"): EngineLoad(running=2, waiting=5, kv_usage=0.5),
        ("default", "llama-0"): EngineLoad(running=1, waiting=2, kv_usage=0.125),
        ("default", "idle-0"): EngineLoad(),
    }
    # ...and routing follows it: the busy SGLang and llama.cpp engines are avoided.
    spec = services.ServiceSpec(routes=[services.Route(deployment="d")], strategy="least-request")
    router = Router(region=None, seed=1)
    router.engine_load.update(loads)
    picks = {
        router.choose(
            built, ServiceEntry("default", "s", "s", spec), RouteRequest(), 0.0,
            tried=set(), empty_routes=set(),
        ).endpoint.name  # type: ignore[union-attr]
        for _ in range(20)
    }  # fmt: skip
    assert picks == {"idle-0"}
