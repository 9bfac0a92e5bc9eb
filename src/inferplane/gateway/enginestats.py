"""The engines' own view of their load, scraped off the request path.

Every few seconds the gateway reads each internal endpoint's /metrics: requests running,
requests waiting, KV-cache usage. An Endpoint does not say which engine serves it, so the
reading recognises the engine by the names in the scrape (api/enginemetrics.py, the one
table the agent reads by too): vLLM and the reference engine, SGLang, llama.cpp and TGI alike.
The numbers see every gateway's traffic but lag by the scrape period; the router takes the
larger of them and its own in-flight count (EndpointState.load).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from inferplane.api import enginemetrics
from inferplane.gateway.table import EndpointEntry, NsName, Table
from inferplane.gateway.upstreams import Upstreams
from inferplane.gateway.wire.upstream import UpstreamError

SCRAPE_SECONDS = 2.0
TIMEOUT = 2.0


@dataclass(frozen=True)
class EngineLoad:
    running: int = 0
    waiting: int = 0
    kv_usage: float = 0.0


def parse(text: bytes) -> EngineLoad:
    """The load in a Prometheus text exposition of any known engine; metrics summed over
    their label sets."""
    reading = enginemetrics.read_any(text.decode("utf-8", "replace"))
    return EngineLoad(int(reading.running), int(reading.waiting), reading.kv_cache_usage)


async def scrape_forever(
    upstreams: Upstreams, table: Callable[[], Table], loads: dict[NsName, EngineLoad]
) -> None:
    """Keep `loads` current for every ready internal endpoint; forget those that left."""
    while True:
        endpoints = [e for e in table().endpoints_by_name.values() if e.ready and not e.external]
        results = await asyncio.gather(*(_scrape(upstreams, e) for e in endpoints))
        live = set()
        for endpoint, load in zip(endpoints, results, strict=True):
            key = (endpoint.namespace, endpoint.name)
            live.add(key)
            if load is not None:
                loads[key] = load
        for key in [k for k in loads if k not in live]:
            del loads[key]
        await asyncio.sleep(SCRAPE_SECONDS)


async def _scrape(upstreams: Upstreams, endpoint: EndpointEntry) -> EngineLoad | None:
    try:
        exchange = await upstreams.send(
            endpoint,
            b"/metrics",
            b"",
            connect_timeout=TIMEOUT,
            first_byte_timeout=TIMEOUT,
            request_id=b"scrape",
            method=b"GET",
        )
        body = await exchange.read(TIMEOUT)
    except UpstreamError:
        return None
    return parse(body) if exchange.status == 200 else None
