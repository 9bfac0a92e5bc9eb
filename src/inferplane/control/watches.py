"""Watch over HTTP: a newline-delimited JSON stream of changes, resumable by resourceVersion."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse

from inferplane.api.meta import API_VERSION
from inferplane.api.registry import KindInfo
from inferplane.control import errors, requests, views
from inferplane.store import base as store_base

if TYPE_CHECKING:
    from inferplane.control.plane import ControlPlane


async def stream(
    request: Request,
    plane: ControlPlane,
    info: KindInfo,
    namespace: str | None,
    selected: requests.Filters,
    view: views.View = views.FLEET,
) -> StreamingResponse:
    """Open a watch; 410 now (not mid-stream) when the start version was compacted away."""
    asked = requests.int_param(request, "resourceVersion")
    timeout = requests.int_param(request, "timeoutSeconds")
    initial: list[dict[str, Any]] = []
    if asked is None:
        initial, start = await plane.read(plane.store.list, info.kind, namespace)
    else:
        start = asked
        try:
            await plane.read(plane.store.events_since, start, limit=1)
        except store_base.GoneError as exc:
            raise errors.from_store(exc, plural=info.plural, name="") from exc
    lines = _lines(plane, info, namespace, selected, start, initial, timeout, view)
    return StreamingResponse(lines, media_type="application/x-ndjson")


async def _lines(
    plane: ControlPlane,
    info: KindInfo,
    namespace: str | None,
    selected: requests.Filters,
    start: int,
    initial: list[dict[str, Any]],
    timeout: int | None,
    view: views.View,
) -> AsyncIterator[bytes]:
    gauge = plane.metrics.watchers.labels(info.plural)
    gauge.inc()
    try:
        for obj in initial:
            if selected.matches(obj):
                yield _line("ADDED", obj, view)
        async for line in _changes(plane, info, namespace, selected, start, timeout, view):
            yield line
    finally:
        gauge.dec()


async def _changes(
    plane: ControlPlane,
    info: KindInfo,
    namespace: str | None,
    selected: requests.Filters,
    start: int,
    timeout: int | None,
    view: views.View,
) -> AsyncIterator[bytes]:
    """Every change after `start`, plus a BOOKMARK when quiet so clients can resume close by."""
    deadline = time.monotonic() + timeout if timeout else None
    interval = plane.settings.bookmark_interval_seconds
    last = start
    # A pump task feeds a queue: cancelling a queue read on timeout is safe, whereas
    # cancelling the subscription's own __anext__ would close it.
    queue: asyncio.Queue[store_base.WatchEvent | Exception | None] = asyncio.Queue(maxsize=256)
    pump = asyncio.create_task(_pump(plane, start, queue))
    try:
        while deadline is None or time.monotonic() < deadline:
            wait = interval if deadline is None else min(interval, deadline - time.monotonic())
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                async with asyncio.timeout(max(wait, 0.0)):
                    batch = [await queue.get()]
            except TimeoutError:
                yield _bookmark(info, last)
                continue
            while not queue.empty():  # what else is queued goes out in the same chunk
                batch.append(queue.get_nowait())
            chunk = bytearray()
            for item in batch:
                if item is None:  # the hub stopped: end the stream so shutdown is prompt
                    if chunk:
                        yield bytes(chunk)
                    return
                if isinstance(item, store_base.GoneError):
                    yield bytes(chunk) + _error(
                        errors.from_store(item, plural=info.plural, name="")
                    )
                    return
                if isinstance(item, Exception):
                    raise item
                last = item.resource_version
                seen_as = _seen_as(item, info, namespace, selected)
                if seen_as is not None:
                    chunk += _encoded(item, seen_as, view)
            if chunk:
                yield bytes(chunk)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


async def _pump(
    plane: ControlPlane,
    start: int,
    queue: asyncio.Queue[store_base.WatchEvent | Exception | None],
) -> None:
    try:
        async for event in plane.hub.subscribe(kind=None, namespace=None, resource_version=start):
            await queue.put(event)
    except store_base.StoreError as exc:
        await queue.put(exc)
        return
    await queue.put(None)


def _seen_as(
    event: store_base.WatchEvent, info: KindInfo, namespace: str | None, sel: requests.Filters
) -> str | None:
    """The event type a filtered watcher sees, or None: an object that starts matching the
    selectors is ADDED for it, one that stops matching is DELETED, as Kubernetes does."""
    obj = event.object
    if obj.get("kind") != info.kind:
        return None
    if namespace is not None and obj["metadata"].get("namespace", "") != namespace:
        return None
    now = sel.matches(obj)
    if event.type != "MODIFIED" or event.previous is None or not sel.filtering:
        return event.type if now else None
    before = sel.matches(event.previous)
    if before and now:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


# Keyed by version, uid, the type sent and the view: unique within a store, distinct across
# stores and across what different readers may see.
_ENCODED: OrderedDict[tuple[int, str, str, str], bytes] = OrderedDict()
_ENCODED_MAX = 4096


def _encoded(event: store_base.WatchEvent, seen_as: str, view: views.View) -> bytes:
    """An event's line, serialised once however many watchers with this view send it."""
    uid = str(event.object["metadata"].get("uid", ""))
    key = (event.resource_version, uid, seen_as, view.key)
    line = _ENCODED.get(key)
    if line is None:
        line = _line(seen_as, event.object, view)
        _ENCODED[key] = line
        if len(_ENCODED) > _ENCODED_MAX:
            _ENCODED.popitem(last=False)
    return line


def _line(kind: str, obj: dict[str, Any], view: views.View) -> bytes:
    # A watcher sees what a get shows it: no Secret values, no other tenant's replicas.
    return orjson.dumps({"type": kind, "object": view.show(obj)}) + b"\n"


def _bookmark(info: KindInfo, version: int) -> bytes:
    obj = {
        "apiVersion": API_VERSION,
        "kind": info.kind,
        "metadata": {"resourceVersion": str(version)},
    }
    return _line("BOOKMARK", obj, views.FLEET)


def _error(problem: errors.ApiProblem) -> bytes:
    return _line("ERROR", problem.body(), views.FLEET)
