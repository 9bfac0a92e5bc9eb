"""The audit trail's storage and its read API.

`AuditWriter` queues records as the middleware hands them over and writes them to the store in
batches, every FLUSH_SECONDS or once BATCH records wait, from a background task: a write
request never waits for its audit record. `GET /apis/inferplane.dev/v1/audit` lists records,
for fleet admins only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from inferplane import logs
from inferplane.api import registry
from inferplane.api.meta import API_VERSION
from inferplane.control import errors, resources
from inferplane.store import base as store_base

log = logging.getLogger(__name__)

BATCH = 500
FLUSH_SECONDS = 0.5
CAPACITY = 100_000
"""Records held at most while the store cannot take them; later ones are dropped (counted)."""
DEFAULT_LIMIT = 500
MAX_LIMIT = 10_000


class AuditWriter:
    """A queue of records, flushed to the store in batches off the request path."""

    def __init__(
        self, *, batch: int = BATCH, interval: float = FLUSH_SECONDS, capacity: int = CAPACITY
    ) -> None:
        self._batch = batch
        self._interval = interval
        self._capacity = capacity
        self._pending: list[store_base.AuditRecord] = []
        self._due = asyncio.Event()
        self._lock = asyncio.Lock()
        self._store: store_base.Store | None = None
        self.dropped = 0

    def add(self, record: store_base.AuditRecord) -> None:
        """Queue a record (on the event loop; never blocks)."""
        if len(self._pending) >= self._capacity:
            self.dropped += 1
            return
        self._pending.append(record)
        if len(self._pending) >= self._batch:
            self._due.set()

    async def run(self, store: store_base.Store) -> None:
        """Flush forever; cancel it, then call `flush` once more at shutdown."""
        self._store = store
        while True:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that arrives as a batch
            # falls due, and the writer never stops (shutdown awaits it). timeout() does not.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._due.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write what is queued; on a store error keep it for the next flush."""
        async with self._lock:
            self._due.clear()
            batch, self._pending = self._pending, []
            if not batch or self._store is None:
                self._pending = batch + self._pending
                return
            try:
                await asyncio.to_thread(self._store.append_audit, batch)
            except Exception:
                log.exception("writing %d audit records failed; kept for later", len(batch))
                self._pending = (batch + self._pending)[: self._capacity]
                return
        if self.dropped:
            logs.event(log, "audit records dropped while the store was failing", count=self.dropped)
            self.dropped = 0


def writer_of(request: Request) -> AuditWriter:
    writer: AuditWriter = request.app.state.audit
    return writer


# -- the read API ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    since: datetime | None = None
    user: str | None = None
    kind: str | None = None
    namespace: str | None = None
    limit: int = DEFAULT_LIMIT


def parse_query(params: dict[str, str]) -> Query:
    """The filters of a request's query string; 400 naming the parameter that is wrong."""
    unknown = sorted(set(params) - {"since", "user", "kind", "namespace", "limit"})
    if unknown:
        raise _bad(unknown[0], "unknown parameter: use since, user, kind, namespace, limit")
    return Query(
        since=_since(params.get("since")),
        user=params.get("user") or None,
        kind=_kind(params.get("kind")),
        namespace=params.get("namespace") or None,
        limit=_limit(params.get("limit")),
    )


def _bad(field: str, message: str) -> errors.ApiProblem:
    return errors.bad_request(f"{field}: {message}", causes=[errors.Cause(field, message)])


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad("since", "must be an RFC 3339 time, e.g. 2025-01-31T12:00:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _kind(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return registry.lookup(text).plural
    except registry.UnknownKindError as exc:
        raise _bad("kind", f"the server has no kind {text!r}") from exc


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise _bad("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def to_json(record: store_base.AuditRecord) -> dict[str, Any]:
    """A record on the wire: camelCase, times in RFC 3339 with microseconds."""
    shown: dict[str, Any] = {
        "time": record.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "requestId": record.request_id,
        "level": record.level,
        "user": record.user,
        "sourceAddress": record.source,
        "verb": record.verb,
        "kind": record.kind,
        "namespace": record.namespace,
        "name": record.name,
        "subresource": record.subresource,
        "path": record.path,
        "code": record.code,
    }
    if record.resource_version is not None:
        shown["resourceVersion"] = str(record.resource_version)
    if record.body is not None:
        shown["requestObject"] = record.body
    return shown


def as_list(records: Sequence[store_base.AuditRecord]) -> dict[str, Any]:
    items = [to_json(record) for record in records]
    return {"apiVersion": API_VERSION, "kind": "AuditRecordList", "items": items}


async def list_records(request: Request) -> JSONResponse:
    """The newest records matching the filters, oldest first."""
    principal = resources.principal_of(request)
    if not principal.fleet_admin:
        raise errors.forbidden(f"{principal} cannot read the audit trail: fleet admins only")
    query = parse_query(dict(request.query_params))
    await writer_of(request).flush()  # what this replica still queues is part of the answer
    plane = resources.plane_of(request)
    records = await plane.read(
        plane.store.list_audit,
        since=query.since,
        user=query.user,
        kind=query.kind,
        namespace=query.namespace,
        limit=query.limit,
    )
    return JSONResponse(as_list(records))


def router() -> APIRouter:
    """Include it before the resource routes: `/audit` is no plural."""
    api = APIRouter(prefix=resources.PREFIX)
    api.add_api_route("/audit", list_records, methods=["GET"], tags=["audit"])
    return api
