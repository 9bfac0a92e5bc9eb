"""W watchers in a child process of their own, so that reading W streams does not slow the writer.

Each watcher streams `GET …/models?watch=true&resourceVersion=START` and stamps every chunk
with `time.monotonic()` as it arrives. CLOCK_MONOTONIC is one clock for every process on the
machine, so these stamps compare directly with the writer's.

Protocol over the pipe: the child sends ("ready", None) once every stream has answered 200
(or ("failed", reason)); the parent sends "done" when its writes are done; the child then
waits at most `grace_s` for every watcher to see the end marker and sends ("result", logs).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import NamedTuple

import httpx
import orjson

from bench import objects


class Received(NamedTuple):
    at: float
    """time.monotonic() when the chunk holding the event arrived."""
    type: str
    name: str
    resource_version: int


@dataclass
class WatcherLog:
    events: list[Received] = field(default_factory=list)
    """Every ADDED/MODIFIED/DELETED event, in arrival order (bookmarks left out)."""
    error: str | None = None


@dataclass(frozen=True)
class WatchSpec:
    url: str
    token: str
    start_version: int
    watchers: int
    grace_s: float
    """How long after the writer is done every watcher may take to see the end marker."""


class WatchFailed(Exception):
    """A stream answered badly, carried an ERROR event, or ended early."""


def serve(spec: WatchSpec, conn: Connection) -> None:
    """The child process's entry point."""
    asyncio.run(_main(spec, conn))


async def _main(spec: WatchSpec, conn: Connection) -> None:
    headers = {"Authorization": f"Bearer {spec.token}"}
    limits = httpx.Limits(max_connections=spec.watchers, max_keepalive_connections=0)
    timeout = httpx.Timeout(30.0, read=None)
    async with httpx.AsyncClient(
        base_url=spec.url, headers=headers, limits=limits, timeout=timeout
    ) as client:
        try:
            responses = await asyncio.gather(*(_open(client, spec) for _ in range(spec.watchers)))
        except (httpx.HTTPError, WatchFailed) as exc:
            conn.send(("failed", repr(exc)))
            return
        logs = [WatcherLog() for _ in responses]
        tasks = [
            asyncio.create_task(_consume(r, log)) for r, log in zip(responses, logs, strict=True)
        ]
        conn.send(("ready", None))
        await asyncio.to_thread(conn.recv)
        _, pending = await asyncio.wait(tasks, timeout=spec.grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for log, response in zip(logs, responses, strict=True):
            await response.aclose()
            if log.error is None and (not log.events or log.events[-1].name != objects.END_MARKER):
                log.error = f"no end marker within {spec.grace_s:.0f}s of the last write"
    conn.send(("result", logs))


async def _open(client: httpx.AsyncClient, spec: WatchSpec) -> httpx.Response:
    params = {"watch": "true", "resourceVersion": str(spec.start_version)}
    request = client.build_request("GET", objects.MODELS_PATH, params=params)
    response = await client.send(request, stream=True)
    if response.status_code != 200:
        body = await response.aread()
        raise WatchFailed(f"watch answered {response.status_code}: {body[:300]!r}")
    return response


async def _consume(response: httpx.Response, log: WatcherLog) -> None:
    """Read until the end marker; an error is noted in the log, never raised."""
    buffer = b""
    try:
        async for chunk in response.aiter_raw():
            at = time.monotonic()
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                if line and _record(line, at, log):
                    return
        raise WatchFailed("the stream ended before the end marker")
    except (httpx.HTTPError, WatchFailed, ValueError, KeyError) as exc:
        log.error = repr(exc)


def _record(line: bytes, at: float, log: WatcherLog) -> bool:
    """Note one event line; True once it is the end marker."""
    event = orjson.loads(line)
    if event["type"] == "BOOKMARK":
        return False
    if event["type"] == "ERROR":
        raise WatchFailed(f"ERROR event: {event['object']}")
    meta = event["object"]["metadata"]
    log.events.append(Received(at, event["type"], meta["name"], int(meta["resourceVersion"])))
    return bool(meta["name"] == objects.END_MARKER)
