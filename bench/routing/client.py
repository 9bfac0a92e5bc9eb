"""The bench's HTTP side: streamed chat completions sent open or closed loop, and scrapes of
the engines' /metrics (before and after a run, and every `period` seconds during one)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from bench.routing import counters
from bench.routing.workloads import Request, Workload

MODEL = "demo"
T = TypeVar("T")


@dataclass
class Result:
    """One request: seconds from its intended send time (open loop) or its send (closed)."""

    ttft: float = 0.0
    """To the first chunk with content."""
    e2e: float = 0.0
    tokens: int = 0
    prompt_tokens: int = 0
    endpoint: str = ""
    """The replica ours named in x-inferplane-endpoint (a peer names none)."""
    group: int = -1
    error: str = ""


@dataclass
class Run:
    results: list[Result]
    wall: float
    """From the first intended send to the last answer."""
    before: list[counters.EngineCounters]
    midway: list[counters.EngineCounters]
    """Scraped as the middle request is sent: the second half's hit rate is past the cold
    misses of the first sight of each prefix."""
    after: list[counters.EngineCounters]
    loads: list[list[float]] = field(default_factory=list)
    """Engine running + waiting, one row per sample, one column per engine."""


def new_client(connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(timeout=httpx.Timeout(300, connect=10), limits=limits, trust_env=False)


def chat_body(request: Request, max_tokens: int) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": request.messages(),
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def stream_chat(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, object],
    token: str,
    start: float,
    *,
    group: int = -1,
) -> Result:
    """One streamed chat completion; times count from `start` (a perf_counter reading)."""
    result, usage = Result(group=group), None
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with client.stream(
            "POST", f"{url}/v1/chat/completions", json=body, headers=headers
        ) as response:
            if response.status_code != 200:
                text = (await response.aread())[:200].decode(errors="replace")
                result.error = f"HTTP {response.status_code}: {text}"
                return result
            result.endpoint = response.headers.get("x-inferplane-endpoint", "")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                usage = chunk.get("usage") or usage
                choices = chunk.get("choices") or [{}]
                if not result.ttft and (choices[0].get("delta") or {}).get("content"):
                    result.ttft = time.perf_counter() - start
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    result.e2e = time.perf_counter() - start
    if usage:
        result.tokens = int(usage.get("completion_tokens") or 0)
        result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    return result


async def drive(url: str, workload: Workload, token: str, engines: list[str], sample: bool) -> Run:
    """Send the workload (open or closed loop); scrape the engines before, midway and after,
    and with `sample` every 100 ms meanwhile (a closed loop: until its last request is sent,
    while its load is steady)."""
    stop, half = asyncio.Event(), asyncio.Event()
    loads: list[list[float]] = []
    async with new_client(len(engines)) as scraper:
        before = await scrape(scraper, engines)
        sampler = asyncio.create_task(sample_loads(scraper, engines if sample else [], stop, loads))
        midway = asyncio.create_task(after_event(half, scrape(scraper, engines)))
        start = time.perf_counter()
        if workload.concurrency:
            results = await closed_loop(url, workload, token, half, stop)
        else:
            results = await open_loop(url, workload, token, start, half)
        wall = time.perf_counter() - start
        stop.set()
        await sampler
        after = await scrape(scraper, engines)
        return Run(results, wall, before, await midway, after, loads)


async def after_event(event: asyncio.Event, then: Awaitable[T]) -> T:
    await event.wait()
    return await then


async def open_loop(
    url: str, workload: Workload, token: str, start: float, half: asyncio.Event
) -> list[Result]:
    """Each request at its intended time, whatever the answers do; timed from that time.
    `half` is set as the middle request goes."""
    middle = len(workload.requests) // 2
    async with new_client(len(workload.requests)) as client:

        async def one(index: int, request: Request) -> Result:
            intended = start + request.at
            await asyncio.sleep(max(0.0, intended - time.perf_counter()))
            if index == middle:
                half.set()
            body = chat_body(request, workload.max_tokens)
            return await stream_chat(client, url, body, token, intended, group=request.group)

        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(workload.requests))))


async def closed_loop(
    url: str, workload: Workload, token: str, half: asyncio.Event, sent_all: asyncio.Event
) -> list[Result]:
    """`workload.concurrency` clients, each sending its next request when one finishes.
    `half` is set as the middle request goes, `sent_all` as the last does: the load is
    steady until then, and drains after."""
    results: list[Result | None] = [None] * len(workload.requests)
    queue = list(range(len(workload.requests)))[::-1]
    middle = len(workload.requests) // 2
    async with new_client(workload.concurrency) as client:

        async def loop() -> None:
            while queue:
                index = queue.pop()
                if index == middle:
                    half.set()
                if not queue:
                    sent_all.set()
                request = workload.requests[index]
                body = chat_body(request, workload.max_tokens)
                sent = time.perf_counter()
                results[index] = await stream_chat(
                    client, url, body, token, sent, group=request.group
                )

        await asyncio.gather(*(loop() for _ in range(workload.concurrency)))
    return [r for r in results if r is not None]


async def sample_loads(
    client: httpx.AsyncClient,
    urls: list[str],
    stop: asyncio.Event,
    out: list[list[float]],
    period: float = 0.1,
) -> None:
    """Every `period` s until `stop`: each engine's running + waiting, one row per instant."""
    if not urls:
        return
    while not stop.is_set():
        out.append([c.load for c in await scrape(client, urls)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)


async def scrape(client: httpx.AsyncClient, urls: list[str]) -> list[counters.EngineCounters]:
    """Each engine's counters now."""
    pages = await asyncio.gather(*(client.get(f"{u}/metrics") for u in urls))
    return [counters.parse(page.text) for page in pages]
