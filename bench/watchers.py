"""W watchers in a child process of their own, so that reading W streams does not slow the writer.

Each watcher streams `GET …/models?watch=true&resourceVersion=START` (with `bench.ndjson`,
which costs little per event) and stamps every chunk with `time.monotonic()` as it arrives.
CLOCK_MONOTONIC is one clock for every process on the machine, so these stamps compare
directly with the writer's. Lines are parsed only after the run.

Protocol over the pipe: the child sends ("ready", None) once every stream has answered 200
(or ("failed", reason)); the parent sends "done" when its writes are done; the child then
waits at most `grace_s` for every watcher to see the end marker and sends ("result",
WatchResult).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import NamedTuple

import orjson

from bench import ndjson, objects

MARKER_BYTES = objects.END_MARKER.encode()


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
class WatchResult:
    logs: list[WatcherLog]
    cpu_seconds: float
    """CPU the watcher process spent from the first write to the end of the last stream."""


@dataclass(frozen=True)
class WatchSpec:
    url: str
    token: str
    start_version: int
    watchers: int
    grace_s: float
    """How long after the writer is done every watcher may take to see the end marker."""


class WatchFailed(Exception):
    """A stream carried an ERROR event or a line that is not a watch event."""


@dataclass
class _Lines:
    """What one stream delivered, raw: (arrival time, line)."""

    lines: list[tuple[float, bytes]] = field(default_factory=list)

    def add(self, line: bytes, at: float) -> bool:
        self.lines.append((at, line))
        return MARKER_BYTES in line and _is_marker(line)


def serve(spec: WatchSpec, conn: Connection) -> None:
    """The child process's entry point."""
    asyncio.run(_main(spec, conn))


async def _main(spec: WatchSpec, conn: Connection) -> None:
    url = f"{spec.url}{objects.MODELS_PATH}?watch=true&resourceVersion={spec.start_version}"
    raw = [_Lines() for _ in range(spec.watchers)]
    try:
        streams = await asyncio.gather(
            *(ndjson.open_stream(url, token=spec.token, on_line=lines.add) for lines in raw)
        )
    except (OSError, ndjson.StreamError) as exc:
        conn.send(("failed", repr(exc)))
        return
    conn.send(("ready", None))
    started = time.process_time()
    await asyncio.to_thread(conn.recv)
    errors = await _wait_all(streams, spec.grace_s)
    used = time.process_time() - started
    logs = [_parse(lines, error) for lines, error in zip(raw, errors, strict=True)]
    conn.send(("result", WatchResult(logs, used)))


async def _wait_all(streams: list[ndjson.Stream], grace_s: float) -> list[str | None]:
    """Wait for every stream to reach the end marker; answer each one's error, if any."""
    tasks = [asyncio.create_task(stream.finished()) for stream in streams]
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for stream in streams:
        stream.close()
    return [_error_of(task, grace_s) for task in tasks]


def _error_of(task: asyncio.Task[None], grace_s: float) -> str | None:
    if task.cancelled():
        return f"no end marker within {grace_s:.0f}s of the last write"
    error = task.exception()
    return repr(error) if error else None


def _parse(raw: _Lines, error: str | None) -> WatcherLog:
    log = WatcherLog(error=error)
    try:
        for at, line in raw.lines:
            event = _event(line, at)
            if event is not None:
                log.events.append(event)
    except (WatchFailed, ValueError, KeyError) as exc:
        log.error = log.error or repr(exc)
    return log


def _event(line: bytes, at: float) -> Received | None:
    """The event a line holds; None for a bookmark."""
    event = orjson.loads(line)
    if event["type"] == "BOOKMARK":
        return None
    if event["type"] == "ERROR":
        raise WatchFailed(f"ERROR event: {event['object']}")
    meta = event["object"]["metadata"]
    return Received(at, event["type"], meta["name"], int(meta["resourceVersion"]))


def _is_marker(line: bytes) -> bool:
    try:
        return bool(orjson.loads(line)["object"]["metadata"]["name"] == objects.END_MARKER)
    except (ValueError, KeyError, TypeError):
        return False
