"""Replica logs through the control plane, while agents only ever connect outward.

A reader asks `GET .../namespaces/NS/replicas/NAME/log[?follow=true&tailLines=N]`. That opens
a session here, in memory. The replica's agent keeps a long poll open on
`GET .../agents/CLUSTER/log-requests?known=ID,...`, which answers as soon as the cluster's
open sessions differ from those the agent already serves; the agent then pushes the log with
`POST .../namespaces/NS/replicas/NAME/log?session=ID[&eof=true]` and stops when a push
answers 404 or the session leaves the list. Nothing is stored: a session lives as long as its
reader, and with several control-plane replicas the reader and the agent must reach the same
one (a sticky load balancer, or one replica serving these paths).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from inferplane.control import auth, errors, requests, resources

PREFIX = resources.PREFIX
CLAIM_TIMEOUT_S = 10.0
"""How long a reader waits for the replica's agent to pick its session up."""
POLL_TIMEOUT_S = 20
"""Longest an agent's long poll is held open (it may ask for less)."""
PUSH_TIMEOUT_S = 30.0
"""How long a push waits for a slow reader before the agent is told to give up."""
QUEUE_CHUNKS = 64
IDLE_TIMEOUT_S = 60.0
"""A reader not following is done once its agent has sent nothing for this long (an agent
that died mid-way never sends the end)."""


@dataclass(eq=False)
class Session:
    """One reader of one replica's log."""

    id: str
    cluster: str
    namespace: str
    name: str
    follow: bool
    tail_lines: int | None
    chunks: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_CHUNKS)
    )
    claimed: asyncio.Event = field(default_factory=asyncio.Event)

    def request(self) -> dict[str, Any]:
        """The session as the agent's long poll lists it."""
        return {
            "id": self.id,
            "namespace": self.namespace,
            "name": self.name,
            "follow": self.follow,
            "tailLines": self.tail_lines,
        }


class LogRelay:
    """The open sessions; every method runs on the server's event loop."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._changed: asyncio.Condition | None = None
        self._stopped = False

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _notify(self) -> None:
        condition = self._condition()
        async with condition:
            condition.notify_all()

    async def open(self, session: Session) -> None:
        self._sessions[session.id] = session
        await self._notify()

    async def close(self, session_id: str) -> None:
        if self._sessions.pop(session_id, None) is not None:
            await self._notify()

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    async def wanted(self, cluster: str, known: set[str], timeout: float) -> list[Session]:
        """The cluster's open sessions, once they differ from `known` (or at the timeout)."""

        def current() -> list[Session]:
            return [s for s in self._sessions.values() if s.cluster == cluster]

        def differs() -> bool:
            return self._stopped or {s.id for s in current()} != known

        condition = self._condition()
        async with condition:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await condition.wait_for(differs)
        sessions = current()
        for session in sessions:
            session.claimed.set()
        return sessions

    async def stop(self) -> None:
        """The server is shutting down: end every reader and long poll now."""
        self._stopped = True
        for session in list(self._sessions.values()):
            with contextlib.suppress(asyncio.QueueFull):
                session.chunks.put_nowait(None)
        await self._notify()


def relay_of(request: Request) -> LogRelay:
    relay: LogRelay = request.app.state.logrelay
    return relay


def _agent_of(principal: auth.Principal, cluster: str) -> None:
    """Only the agent of `cluster` (or a fleet admin) serves that cluster's log sessions: a
    plane never sees, or answers for, another plane's replicas."""
    if principal.fleet_admin or (principal.agent and principal.cluster == cluster):
        return
    raise errors.forbidden(f"{principal} cannot serve the logs of cluster {cluster!r}")


async def read_log(request: Request, namespace: str, name: str) -> Response:
    """Stream a replica's log, fetched from its agent; `follow=true` keeps it open."""
    replica = await resources.get_object(request, "replicas", name)  # viewer may read
    cluster = (replica.get("spec") or {}).get("cluster")
    if not cluster:
        raise errors.bad_request(f'replica "{name}" is not bound to a cluster yet: no log')
    relay = relay_of(request)
    session = Session(
        id=secrets.token_urlsafe(16),
        cluster=cluster,
        namespace=namespace,
        name=name,
        follow=requests.bool_param(request, "follow"),
        tail_lines=requests.int_param(request, "tailLines"),
    )
    await relay.open(session)
    try:
        async with asyncio.timeout(CLAIM_TIMEOUT_S):
            await session.claimed.wait()
    except TimeoutError:
        await relay.close(session.id)
        raise errors.ApiProblem(
            503,
            "ServiceUnavailable",
            f'the agent of cluster "{cluster}" did not pick up the log request within'
            f" {CLAIM_TIMEOUT_S:g}s: is it running and connected?",
        ) from None
    return StreamingResponse(_stream(relay, session), media_type="text/plain; charset=utf-8")


async def _stream(relay: LogRelay, session: Session) -> AsyncIterator[bytes]:
    idle = None if session.follow else IDLE_TIMEOUT_S
    try:
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await session.chunks.get()
            except TimeoutError:
                return
            if chunk is None:
                return
            yield chunk
    finally:
        await relay.close(session.id)


async def log_requests(request: Request, cluster: str) -> Response:
    """The agent's long poll: the cluster's open sessions, once they differ from `known`."""
    _agent_of(resources.principal_of(request), cluster)
    known = {k for k in request.query_params.get("known", "").split(",") if k}
    asked = requests.int_param(request, "timeoutSeconds")
    timeout = min(asked if asked is not None else POLL_TIMEOUT_S, POLL_TIMEOUT_S)
    sessions = await relay_of(request).wanted(cluster, known, float(timeout))
    return JSONResponse({"requests": [s.request() for s in sessions]})


async def push_log(request: Request, namespace: str, name: str) -> Response:
    """An agent pushes a chunk of a session's log; 404 once the reader has gone."""
    principal = resources.principal_of(request)
    if not (principal.fleet_admin or principal.agent):
        raise errors.forbidden(f"{principal} cannot push logs: agents only")
    relay = relay_of(request)
    session = relay.get(request.query_params.get("session", ""))
    if session is None or (session.namespace, session.name) != (namespace, name):
        raise errors.not_found("no reader is waiting for this log (it has gone)")
    _agent_of(principal, session.cluster)
    limit = request.app.state.plane.settings.max_body_bytes
    body = await request.body()
    if len(body) > limit:
        raise errors.ApiProblem(413, "RequestEntityTooLarge", f"log chunks are at most {limit} B")
    try:
        async with asyncio.timeout(PUSH_TIMEOUT_S):
            if body:
                await session.chunks.put(body)
            if requests.bool_param(request, "eof"):
                await session.chunks.put(None)
    except TimeoutError:
        raise errors.ApiProblem(503, "ServiceUnavailable", "the reader is not reading") from None
    return Response(status_code=204)


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["logs"])
    replica_log = "/namespaces/{namespace}/replicas/{name}/log"
    api.add_api_route(replica_log, read_log, methods=["GET"])
    api.add_api_route(replica_log, push_log, methods=["POST"])
    api.add_api_route("/agents/{cluster}/log-requests", log_requests, methods=["GET"])
    return api
