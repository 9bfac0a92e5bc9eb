"""The API writer: N creates then N merge-patches over HTTP, a fixed number in flight.

Every write is stamped with `time.monotonic()` just before its request is sent and again when
its response has arrived; the response's resourceVersion is what the watchers' events are
matched against.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import httpx

from bench import objects

EventType = Literal["ADDED", "MODIFIED"]
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@dataclass(frozen=True)
class Write:
    name: str
    type: EventType
    """The watch event this write should cause."""
    sent: float
    """time.monotonic() just before the request was sent."""
    done: float
    """time.monotonic() once the response had arrived."""
    resource_version: int


@dataclass
class WriteRun:
    writes: list[Write] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the timed writes (creates and updates, not the end marker)."""


async def run(url: str, token: str, *, n: int, concurrency: int) -> WriteRun:
    """Create n models, then patch each once; finally create the end marker (untimed)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    result = WriteRun()
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60.0
    ) as client:
        started = time.monotonic()
        await _phase(client, _ops("ADDED", n), concurrency, result)
        await _phase(client, _ops("MODIFIED", n), concurrency, result)
        result.seconds = time.monotonic() - started
        response = await client.post(objects.MODELS_PATH, json=objects.model(objects.END_MARKER))
        if response.status_code != 201:
            result.errors.append(f"end marker: {response.status_code} {response.text[:300]}")
    return result


def _ops(kind: EventType, n: int) -> Iterator[tuple[int, EventType]]:
    return ((index, kind) for index in range(n))


async def _phase(
    client: httpx.AsyncClient,
    ops: Iterator[tuple[int, EventType]],
    concurrency: int,
    result: WriteRun,
) -> None:
    """`concurrency` workers drain one shared iterator of operations."""

    async def worker() -> None:
        for index, kind in ops:
            await _one(client, index, kind, result)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _one(client: httpx.AsyncClient, index: int, kind: EventType, result: WriteRun) -> None:
    name = objects.name_of(index)
    sent = time.monotonic()
    try:
        response = await _send(client, index, kind)
    except httpx.HTTPError as exc:
        result.errors.append(f"{kind} {name}: {exc!r}")
        return
    done = time.monotonic()
    if response.status_code not in (200, 201):
        result.errors.append(f"{kind} {name}: {response.status_code} {response.text[:300]}")
        return
    version = int(response.json()["metadata"]["resourceVersion"])
    result.writes.append(Write(name, kind, sent, done, version))


async def _send(client: httpx.AsyncClient, index: int, kind: EventType) -> httpx.Response:
    name = objects.name_of(index)
    if kind == "ADDED":
        return await client.post(objects.MODELS_PATH, json=objects.model(name))
    patch = objects.update_patch(index)
    return await client.patch(f"{objects.MODELS_PATH}/{name}", json=patch, headers=MERGE_PATCH)
