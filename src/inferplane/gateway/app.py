"""The gateway process: its parts, and the dispatch of each HTTP request.

Routes: the OpenAI APIs (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models),
KServe V2 (/v2/models/{model}/infer|generate|generate_stream), and /healthz, /readyz,
/metrics. Everything but health and metrics needs an API key; /metrics shows a key only its
own namespace's series, and a caller without one none of any tenant.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable

import orjson

from inferplane import logs
from inferplane.gateway import accesslog, errors, pipeline, usage
from inferplane.gateway.accesslog import AccessLog
from inferplane.gateway.calls import OPENAI_PATHS, Api, parse_openai, parse_v2
from inferplane.gateway.holdqueue import HoldQueue
from inferplane.gateway.metrics import FLEET, GatewayMetrics
from inferplane.gateway.router import Router
from inferplane.gateway.table import KeyEntry, NsName, Table
from inferplane.gateway.upstreams import Upstreams
from inferplane.gateway.wire.server import Request, Responder
from inferplane.gateway.wire.upstream import Pool
from inferplane.policy import authfailures, quotas

log = logging.getLogger("inferplane.gateway")

KEY_CACHE = 65536
FLEET_NAMESPACE = "inferplane-system"
"""The fleet's namespace (control/auth.py's; gateway/ does not import control/): a key of it
sees every namespace's series on /metrics."""

V2_OPS = {
    b"infer": Api.V2_INFER,
    b"generate": Api.V2_GENERATE,
    b"generate_stream": Api.V2_GENERATE_STREAM,
}


class GatewayApp:
    """Everything the request path reads, and the handler the HTTP server calls."""

    def __init__(
        self,
        *,
        region: str | None = None,
        access_log: AccessLog | None = None,
        log_prompts: bool = False,
        seed: int | None = None,
    ) -> None:
        self.table = Table()
        self.router = Router(region=region, seed=seed)
        self.upstreams = Upstreams(Pool())
        self.ledger = quotas.Ledger()
        self.metrics = GatewayMetrics()
        self.hold = HoldQueue(self._demand)
        self.usage = usage.UsageReports()
        self.access_log = access_log or AccessLog(None)
        self.log_prompts = log_prompts
        self.table_loaded = False
        self.last_change = time.time()
        self.demand_hook: Callable[[NsName, int], None] | None = None
        """Called with ((namespace, deployment), waiting) when scale-from-zero needs a
        replica; set by the process that has a control-plane client."""
        self._keys: dict[bytes, KeyEntry] = {}
        """Authorization header → key, for this table: a SHA-256 per request is measurable."""
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex().encode()
        self.auth_failures = authfailures.AuthFailures()
        """Refused keys per client address: one that sent too many waits (429)."""
        self._failing = self.auth_failures.tracked

    def set_table(self, table: Table) -> None:
        self.table = table
        self._keys = {}
        usage.seed(self.ledger, table)
        self.table_loaded = True
        self.last_change = time.time()
        self.hold.release(table)
        live = {(e.namespace, e.name) for e in table.endpoints_by_name.values()}
        self.upstreams.forget(live)

    def _demand(self, deployment: NsName, waiting: int) -> None:
        logs.event(
            log,
            "scale-from-zero demand",
            deployment=f"{deployment[0]}/{deployment[1]}",
            waiting=waiting,
        )
        if self.demand_hook is not None:
            self.demand_hook(deployment, waiting)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, request: Request, out: Responder) -> Awaitable[None] | None:
        """Answer now, or return what answers (an inference: no coroutine frame of its own
        between the server and the request's work)."""
        path = request.path
        api = OPENAI_PATHS.get(path)
        if api is not None:
            return self._inference(request, out, api, None)
        if path.startswith(b"/v2/models/"):
            return self._v2(request, out)
        if path == b"/v1/models":
            self._models(request, out)
        elif path in (b"/healthz", b"/health"):
            out.send(200, b'{"status":"ok"}')
        elif path == b"/readyz":
            ready = self.table_loaded
            out.send(200 if ready else 503, b'{"ready":%s}' % (b"true" if ready else b"false"))
        elif path == b"/metrics":
            self._metrics(request, out)
        else:
            error = errors.not_found(path.decode("latin-1"))
            out.send(404, error.openai_body())
        return None

    def on_error(self, request: Request, out: Responder) -> None:
        """An unexpected exception before anything was sent: a 500, logged."""
        log.exception("request failed", extra={"path": request.path.decode("latin-1")})
        error = errors.GatewayError(500, "internal error in the gateway", "server_error")
        out.send(500, error.openai_body())

    def _inference(
        self, request: Request, out: Responder, api: Api, v2_model: str | None
    ) -> Awaitable[None] | None:
        """The request's run to await once its key and call are known; None when it was
        refused before (answered and accounted here)."""
        arrived = time.monotonic()
        request_id = self._prefix + b"-%d" % next(self._ids)
        key: KeyEntry | None = None
        try:
            if request.method != b"POST":
                raise errors.GatewayError(405, f"{api.value} takes POST", cause="bad_request")
            key = self._authenticate(request)
            call = (
                parse_v2(api, v2_model, request.body)
                if v2_model is not None
                else parse_openai(api, request.body, request.headers.get(b"content-type"))
            )
        except errors.GatewayError as error:
            body = error.v2_body() if api.v2 else error.openai_body()
            out.send(error.status, body, headers=(*error.headers, (b"x-request-id", request_id)))
            self._refused(request, request_id, arrived, key, error.status, error.cause)
            return None
        except Exception:
            self._refused(request, request_id, arrived, key, 0, None)  # counted, then a 500
            raise
        return pipeline.RequestRun(self, request, out, request_id, arrived, key, call).serve()

    def _v2(self, request: Request, out: Responder) -> Awaitable[None] | None:
        parts = request.path[len(b"/v2/models/") :].split(b"/")
        if len(parts) == 2 and parts[1] in V2_OPS:
            return self._inference(request, out, V2_OPS[parts[1]], parts[0].decode("latin-1"))
        out.send(404, orjson.dumps({"error": f"no route for {request.path.decode('latin-1')}"}))
        return None

    def _models(self, request: Request, out: Responder) -> None:
        try:
            key = self._authenticate(request)
        except errors.GatewayError as error:
            out.send(error.status, error.openai_body(), headers=error.headers)
            return
        cards = [
            {"id": s.model, "object": "model", "created": 0, "owned_by": s.namespace}
            for (ns, _), s in sorted(self.table.services.items())
            if ns == key.namespace
        ]
        out.send(200, orjson.dumps({"object": "list", "data": cards}))

    def _metrics(self, request: Request, out: Responder) -> None:
        """Prometheus text: without a key, only the gateway's own series (no tenant's); to a
        key, its namespace's too; to a key of the fleet's namespace, every namespace's (the
        operator's Prometheus scrapes with a viewer key there)."""
        scope = None
        if b"authorization" in request.headers:
            try:
                key = self._authenticate(request)
            except errors.GatewayError as error:
                out.send(error.status, error.openai_body(), headers=error.headers)
                return
            # A key of the fleet's namespace here is its admin, deployer or viewer: the table
            # holds no agent, gateway or join keys (table.py).
            scope = FLEET if key.namespace == FLEET_NAMESPACE else key.namespace
        self.metrics.table_age.set((), time.time() - self.last_change)
        self._in_flight_gauges()
        page = self.metrics.render(scope)
        out.send(200, page, b"text/plain; version=0.0.4; charset=utf-8")

    def _authenticate(self, request: Request) -> KeyEntry:
        if self._failing and request.peer in self._failing:  # no cost while none failed
            self._check_failures(request.peer)
        header = request.headers.get(b"authorization")
        if header is None or header[:7].lower() != b"bearer ":
            if header is not None:
                self.auth_failures.failed(request.peer, time.monotonic())
            raise errors.unauthorized(
                "You didn't provide an API key: send it as 'Authorization: Bearer YOUR_KEY'."
            )
        key = self._keys.get(header)
        if key is None:
            digest = hashlib.sha256(header[7:].strip()).hexdigest()
            key = self.table.keys.get(digest)
            if key is None:
                self.auth_failures.failed(request.peer, time.monotonic())
                raise errors.unauthorized("Incorrect API key provided: it is unknown or revoked.")
            if len(self._keys) >= KEY_CACHE:
                self._keys.clear()
            self._keys[header] = key
        if key.expires_at is not None and key.expires_at <= time.time():
            self.auth_failures.failed(request.peer, time.monotonic())
            raise errors.unauthorized(f"API key {key.namespace}/{key.name} has expired.")
        return key

    def _check_failures(self, peer: str) -> None:
        """429 before the key is looked at, while this address must wait (Retry-After)."""
        seconds = self.auth_failures.retry_after(peer, time.monotonic())
        if seconds is not None:
            message = (
                f"Too many requests with an incorrect API key from {peer}: retry after "
                f"{seconds} s (at most {self.auth_failures.limit} a minute per address)."
            )
            retry = ((b"retry-after", str(seconds).encode()),)
            raise errors.GatewayError(
                429,
                message,
                "rate_limit_exceeded",
                code="too_many_auth_failures",
                cause="auth",
                headers=retry,
            )

    # -- after each request ----------------------------------------------------------------

    def _refused(
        self,
        request: Request,
        request_id: bytes,
        arrived: float,
        key: KeyEntry | None,
        status: int,
        cause: str | None,
    ) -> None:
        """Account for a request answered before it had a call (no service, no endpoint);
        a served one accounts for itself (pipeline.RequestRun)."""
        code = str(status)
        self.metrics.requests.inc(("-", "-", code))
        if cause is not None:
            self.metrics.errors.inc(("-", cause))
        if not self.access_log.enabled:
            return
        self.access_log.write(
            accesslog.request_record(
                request_id,
                request.path,
                status,
                f"{key.namespace}/{key.name}" if key else None,
                time.monotonic() - arrived,
                cause,
            )
        )

    def _in_flight_gauges(self) -> None:
        for (ns, name), count in self.router.in_flight.items():
            endpoint = self.table.endpoints_by_name.get((ns, name))
            deployment = endpoint.deployment if endpoint else None
            self.metrics.in_flight.set((f"{ns}/{deployment or '-'}", name), count)
