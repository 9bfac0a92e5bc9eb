"""The life of one inference request: limits, route, send, relay, account.

A `RequestRun` is made per request once its key and call are known (app.py) and holds all
that the request's steps share: the gateway, the call, the key, the responder and what the
access log will say. Its steps read top-down: `serve` admits the request and walks its targets
(the Service itself, then its fallback chain: policy/routing/fallbacks.py); `_try_target`
retries within one target on endpoints not yet tried (policy/routing/retries.py); `_attempt`
is one try on one endpoint, relayed whole (`_whole`) or streamed (streaming.py, which resumes
a broken stream through the same `send` and `check`). Every request ends in exactly one
response and one access-log line (`_account`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Coroutine
from typing import Any

from inferplane.gateway import accesslog, bodies, errors, streaming
from inferplane.gateway.calls import Call
from inferplane.gateway.context import Gateway
from inferplane.gateway.holdqueue import QueueFull
from inferplane.gateway.outcomes import DELIVERED, Delivered, Failed, Outcome
from inferplane.gateway.router import Choice
from inferplane.gateway.table import EndpointEntry, KeyEntry, ServiceEntry
from inferplane.gateway.upstreams import UNKNOWN
from inferplane.gateway.wire.server import Request, Responder
from inferplane.gateway.wire.upstream import Exchange, UpstreamError
from inferplane.policy import quotas
from inferplane.policy.routing import fallbacks, retries
from inferplane.policy.routing.decisions import NoEndpoint
from inferplane.policy.routing.requests import RouteRequest

_STATUS = {code: str(code) for code in range(100, 600)}


class RequestRun:
    """One request as it goes: its parts, and who, where, how far, how much (for the access
    log and the metrics). Made per request in place of a context passed around."""

    __slots__ = (
        "arrived",
        "call",
        "cause",
        "checks",
        "completion_tokens",
        "endpoint",
        "fallback",
        "first_byte",
        "gw",
        "key",
        "out",
        "prompt_tokens",
        "request",
        "request_id",
        "resumes",
        "retries",
        "service",
        "status",
    )

    def __init__(
        self,
        gw: Gateway,
        request: Request,
        out: Responder,
        request_id: bytes,
        arrived: float,
        key: KeyEntry,
        call: Call,
    ) -> None:
        self.gw = gw
        self.request = request
        self.out = out
        self.request_id = request_id
        self.arrived = arrived
        self.key = key
        self.call = call
        self.service: ServiceEntry | None = None
        self.endpoint: EndpointEntry | None = None
        """The endpoint tried last (resumed on last), for the access log and the headers."""
        self.checks: tuple[tuple[str, quotas.Limits], ...] = ()
        """The limits admitted against, charged with the usage at the end."""
        self.fallback: str | None = None
        self.retries = 0
        self.resumes = 0
        self.first_byte = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.status = 0
        self.cause: str | None = None

    # -- the request ------------------------------------------------------------------------

    async def serve(self) -> None:
        """Answer the request: its service, admitted against its limits, then its targets in
        order; the gateway's error when none delivers."""
        gw, call, key = self.gw, self.call, self.key
        try:
            table = gw.table
            service = table.services.get((key.namespace, call.model))
            if service is None:
                raise errors.model_not_found(call.model, key.namespace)
            self.service = service
            checks = ((key.subject, key.limits), *table.quotas.get(key.namespace, ()))
            denied = gw.ledger.admit(checks, time.time())
            if denied is not None:
                raise _limited(denied)
            self.checks = checks
            bodies.clamp_hints(call, key)
            if service.spec.fallback:
                outcome = await self._walk(service)
            else:  # the usual service: no chain to walk
                outcome = await self._try_target(service, True)
            if isinstance(outcome, Failed):
                raise outcome.error
        except errors.GatewayError as error:
            self.status, self.cause = error.status, error.cause
            body = error.v2_body() if call.api.v2 else error.openai_body()
            headers = (*error.headers, (b"x-request-id", self.request_id))
            self.out.send(error.status, body, headers=headers)
        finally:
            self._account()

    async def _walk(self, service: ServiceEntry) -> Outcome:
        """Each target of the fallback chain until one delivers; the last failure else."""
        table = self.gw.table
        chain = fallbacks.chain(
            service,
            service.spec.fallback,
            service.namespace,
            services_by_name=table.services_by_name,
            endpoints_by_name=table.endpoints_by_name,
        )
        outcome: Outcome | None = None
        for index, step in enumerate(chain):
            if index:
                self.fallback = _name(step)
                self.gw.metrics.fallbacks.inc((service.label, self.fallback))
            if isinstance(step, EndpointEntry):
                outcome = await self._attempt(service, None, step)
            else:
                outcome = await self._try_target(step, not fallbacks.judged(index, len(chain)))
            if isinstance(outcome, Delivered):
                break
        assert outcome is not None  # the chain holds the service at least
        return outcome

    async def _try_target(self, service: ServiceEntry, last: bool) -> Outcome:
        """Attempts on the service's endpoints, each on one not tried yet, until one
        delivers, one fails for good, none is left or the attempts are spent."""
        gw = self.gw
        router = gw.router
        if not last:
            why = router.unhealthy(service, time.monotonic())
            if why is not None:
                return Failed(errors.upstream_failed(service.model, why, 503))
            if not router.has_ready(gw.table, service):
                return Failed(errors.no_endpoint(service.model, "no endpoint is ready"))
        elif not router.has_ready(gw.table, service):
            held = await self._hold(service)
            if held is not None:
                return held
        request = _route_request(self.request, self.call, service)
        tried: set[str] = set()
        empty: set[str] = set()
        outcome: Outcome | None = None
        for attempt_no in range(retries.tries(service.spec.retries)):
            choice = router.choose(
                gw.table, service, request, time.monotonic(), tried=tried, empty_routes=empty
            )
            if isinstance(choice, NoEndpoint):
                return outcome or Failed(errors.no_endpoint(service.model, choice.reason))
            if attempt_no:
                self.retries += 1
                gw.metrics.retries.inc((service.label,))
            if choice.decision is not None:
                d = choice.decision
                gw.metrics.decisions.inc(
                    (service.label, d.strategy, "true" if d.spilled else "false")
                )
            outcome = await self._attempt(service, choice, choice.endpoint)
            if isinstance(outcome, Delivered) or not outcome.retryable:
                return outcome
            tried.add(choice.endpoint.name)
        assert outcome is not None  # at least one attempt was made
        return outcome

    async def _hold(self, service: ServiceEntry) -> Outcome | None:
        """Wait for a replica of the service's deployments (scale from zero); None once one
        is ready, else the failure to answer."""
        deployments = [
            (service.namespace, r.deployment)
            for r in service.spec.routes
            if r.deployment is not None and r.weight > 0
        ]
        if not deployments:
            return Failed(errors.no_endpoint(service.model, "no endpoint is ready"))
        timeout = service.spec.timeouts.scaleFromZeroSeconds
        held = self.gw.metrics.held
        held.inc((service.label,))
        try:
            ready = await self.gw.hold.wait(deployments, timeout)
        except QueueFull as full:
            return Failed(errors.no_endpoint(service.model, f"scale-from-zero queue full: {full}"))
        finally:
            held.inc((service.label,), -1)
        return None if ready else Failed(errors.held_too_long(service.model, timeout), False)

    async def _attempt(
        self, service: ServiceEntry, choice: Choice | None, endpoint: EndpointEntry
    ) -> Outcome:
        """One try on one endpoint: Delivered once anything reached the client. `choice` is
        None for an endpoint of the fallback chain (no route, no strategy)."""
        gw, call = self.gw, self.call
        upstreams = gw.upstreams
        served = upstreams.known_name(endpoint)
        if served is UNKNOWN:
            served = await upstreams.served_name(endpoint)
        body = bodies.upstream_body(call, endpoint, served)
        self.endpoint = endpoint
        router = gw.router
        router.started(endpoint)
        sent = time.monotonic()
        try:
            exchange = await self.send(service, endpoint, bodies.upstream_path(call, served), body)
            self.check(exchange, endpoint, whole=True)
            if call.stream and exchange.status == 200:
                outcome = await streaming.relay(self, service, exchange)
            else:
                answer = exchange.body_if_complete()  # the usual small answer: no coroutine
                if answer is None:
                    answer = await exchange.read(service.spec.timeouts.requestSeconds)
                outcome = self._whole(exchange, answer)
        except UpstreamError as error:
            router.outcome(service, endpoint, time.monotonic(), False, time.monotonic() - sent)
            return Failed(errors.upstream_failed(service.model, f"{endpoint.name}: {error}"), True)
        finally:
            router.finished(endpoint)
        first_byte = self.first_byte - sent if self.first_byte else 0.0
        router.outcome(service, endpoint, time.monotonic(), True, first_byte)
        return outcome

    def _whole(self, exchange: Exchange, body: bytes) -> Outcome:
        """A non-streamed answer, read whole: counted, its model name put back, sent."""
        self.first_byte = time.monotonic()
        status = exchange.status
        content_type = exchange.headers.get(b"content-type", b"application/json")
        if status == 200 and content_type.startswith(b"application/json"):
            body = bodies.account_whole(self.call, self, body)
        endpoint = self.endpoint
        headers = (
            (b"x-request-id", self.request_id),
            (b"x-inferplane-endpoint", endpoint.name.encode() if endpoint else b""),
        )
        self.out.send(status, body, content_type, headers)
        self.status = status
        return DELIVERED

    # -- one upstream request, shared by an attempt and a resumed stream -----------------------

    def send(
        self, service: ServiceEntry, endpoint: EndpointEntry, path: bytes, body: bytes
    ) -> Coroutine[Any, Any, Exchange]:
        """The upstream request for this call, to await: the service's timeouts, our request
        id (a coroutine of the pool's, none of its own on the hot path)."""
        timeouts = service.spec.timeouts
        return self.gw.upstreams.send(
            endpoint,
            path,
            body,
            connect_timeout=timeouts.connectSeconds,
            first_byte_timeout=timeouts.firstByteSeconds,
            request_id=self.request_id,
        )

    @staticmethod
    def check(exchange: Exchange, endpoint: EndpointEntry, *, whole: bool) -> None:
        """Raise (abandoning the exchange) when the answer must not reach the client: a
        status worth another endpoint (retries.retryable) or, when the client's response has
        begun (`whole` False: a resumed stream), anything but 200."""
        status = exchange.status
        if status in retries.RETRYABLE_STATUS or (not whole and status != 200):
            exchange.abandon()
            raise UpstreamError(
                "status", f"{endpoint.name} answered {status}", before_response=whole
            )

    # -- after the request ------------------------------------------------------------------

    def _account(self) -> None:
        """The request's metrics, its usage charged to its limits, its access-log line."""
        gw, service = self.gw, self.service
        m = gw.metrics
        endpoint = self.endpoint.name if self.endpoint else "-"
        status = _STATUS.get(self.status) or str(self.status)
        label, cost, now = "-", 0.0, time.monotonic()
        if service is not None:
            label = service.label
            prompt, completion = self.prompt_tokens, self.completion_tokens
            tokens = prompt + completion
            if tokens:
                cost = service.spec.pricing.cost(prompt, completion)
            if self.checks:
                wall = time.time()
                if tokens or cost:
                    gw.ledger.record(self.checks, wall, tokens, cost)
                gw.usage.touched(self.checks, wall)
            if self.cause is None:
                m.latency.observe((label,), now - self.arrived)
                if self.first_byte:
                    m.ttft.observe((label,), self.first_byte - self.arrived)
                if tokens:
                    m.tokens.inc((label, "input"), prompt)
                    m.tokens.inc((label, "output"), completion)
                if cost:
                    m.cost.inc((label,), cost)
        m.requests.inc((label, endpoint, status))
        if self.cause is not None:
            m.errors.inc((label, self.cause))
        if gw.access_log.enabled:
            gw.access_log.write(self._record(label, endpoint, cost, now))

    def _record(self, label: str, endpoint: str, cost: float, now: float) -> dict[str, Any]:
        first_byte = self.first_byte
        extra = {"prompt": self.call.prompt_text} if self.gw.log_prompts else {}
        return accesslog.request_record(
            self.request_id,
            self.request.path,
            self.status,
            f"{self.key.namespace}/{self.key.name}",
            now - self.arrived,
            self.cause,
            service=label,
            model=self.call.model,
            endpoint=endpoint,
            stream=self.call.stream,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost=round(cost, 8),
            first_byte_ms=round((first_byte - self.arrived) * 1000, 2) if first_byte else None,
            retries=self.retries,
            resumes=self.resumes,
            fallback=self.fallback,
            **extra,
        )


NO_HINTS = RouteRequest()
"""What most requests tell the router: no prompt to match, no session (one shared object)."""


def _route_request(request: Request, call: Call, service: ServiceEntry) -> RouteRequest:
    value = request.headers.get(service.session_header)
    prefix = service.spec.strategy == "prefix-aware"
    if value is None and not prefix:
        return NO_HINTS
    return RouteRequest(
        prompt_text=call.prompt_text if prefix else "",
        session=value.decode("latin-1") if value is not None else None,
    )


def _limited(denied: quotas.Denied) -> errors.GatewayError:
    headers: tuple[tuple[bytes, bytes], ...] = ()
    if denied.retry_after is not None:
        seconds = max(1, math.ceil(denied.retry_after))
        headers = ((b"retry-after", str(seconds).encode()),)
    cause = "rate_limit" if denied.kind == "rate" else "budget"
    return errors.GatewayError(
        429,
        denied.message(),
        denied.error_type,
        code=denied.error_type,
        cause=cause,
        headers=headers,
    )


def _name(step: ServiceEntry | EndpointEntry) -> str:
    kind = "service" if isinstance(step, ServiceEntry) else "endpoint"
    return f"{kind}/{step.name}"


__all__ = ["NO_HINTS", "RequestRun"]
