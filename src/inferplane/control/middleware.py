"""One ASGI middleware: request metrics and one structured access-log line per request."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inferplane import logs
from inferplane.control.metrics import Metrics

log = logging.getLogger("inferplane.control.access")
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


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
        query = scope.get("query_string", b"").decode("latin-1")
        watching = "watch=true" in query or "watch=1" in query
        verb = "watch" if watching else VERBS.get(scope["method"], scope["method"].lower())
        if scope["method"] == "GET" and "name" not in params and not watching:
            verb = "list"
        self.metrics.requests.labels(verb, resource, str(code)).inc()
        if not watching:
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
