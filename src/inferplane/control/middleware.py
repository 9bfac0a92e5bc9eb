"""ASGI middleware: request metrics and one structured access-log line per request, and the
containment of unexpected errors."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inferplane import logs
from inferplane.control import errors
from inferplane.control.metrics import Metrics

log = logging.getLogger("inferplane.control.access")
crash_log = logging.getLogger(__name__)
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def verb_of(scope: Scope) -> str:
    """The API verb of a routed request: get, list, watch, create, update, patch, delete."""
    params: dict[str, Any] = scope.get("path_params") or {}
    query = scope.get("query_string", b"").decode("latin-1")
    if "watch=true" in query or "watch=1" in query:
        return "watch"
    if scope["method"] == "GET" and "name" not in params:
        return "list"
    return VERBS.get(scope["method"], scope["method"].lower())


class Observe:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def observe_send(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe_send)
        finally:
            self._record(scope, code, time.perf_counter() - started)

    def _record(self, scope: Scope, code: int, elapsed: float) -> None:
        params: dict[str, Any] = scope.get("path_params") or {}
        resource = str(params.get("plural", "-"))
        verb = verb_of(scope)
        self.metrics.requests.labels(verb, resource, str(code)).inc()
        if verb != "watch":
            self.metrics.latency.labels(verb, resource).observe(elapsed)
        state = scope.get("state") or {}
        logs.event(
            log,
            "request",
            method=scope["method"],
            path=scope["path"],
            code=code,
            principal=str(state.get("principal", "-")),
            ms=round(elapsed * 1000, 2),
        )


class Contain:
    """Answer an unexpected exception with a 500 Status and let the connection live on.

    Starlette's own catch-all (an `Exception` handler) sends the 500 and then re-raises, and
    uvicorn closes a connection whose app raised after its response began: the client's next
    request on that keep-alive connection was reset with no answer. Only an error after the
    response began (a broken watch stream) still reaches the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            crash_log.exception("unhandled error", extra={"path": scope["path"]})
            problem = errors.ApiProblem(500, "InternalError", f"internal error: {exc!r}")
            await problem.response()(scope, receive, send)
