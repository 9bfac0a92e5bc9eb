"""The life of one inference request: key, limits, route, send, relay, account.

Targets are tried in order: the Service itself, then its fallback chain. Within a target, a
failure before the first byte reaches the client is retried on another endpoint, up to the
Service's `retries.attempts`; a stream that breaks after it is resumed (streaming.py). Every
request ends in exactly one response and one access-log line.
"""

from __future__ import annotations

import math
import time

from inferplane.gateway import bodies, errors, streaming
from inferplane.gateway.calls import Api, Call
from inferplane.gateway.context import Context, Gateway
from inferplane.gateway.holdqueue import QueueFull
from inferplane.gateway.outcomes import DELIVERED, Delivered, Failed, Outcome
from inferplane.gateway.router import Choice
from inferplane.gateway.table import EndpointEntry, KeyEntry, ServiceEntry
from inferplane.gateway.upstreams import UNKNOWN
from inferplane.gateway.wire.server import Responder
from inferplane.gateway.wire.upstream import UpstreamError
from inferplane.policy import quotas
from inferplane.policy.routing.decisions import NoEndpoint
from inferplane.policy.routing.requests import RouteRequest

RETRYABLE_STATUS = frozenset((429, 502, 503, 504))
"""Upstream answers that say "not now, not here" rather than "this request is wrong"."""


async def run(gw: Gateway, call: Call, key: KeyEntry, out: Responder, ctx: Context) -> None:
    """Serve `call` for `key`, writing the response to `out`."""
    table = gw.table
    service = table.services.get((key.namespace, call.model))
    if service is None:
        raise errors.model_not_found(call.model, key.namespace)
    ctx.service = service
    checks = ((key.subject, key.limits), *table.quotas.get(key.namespace, ()))
    denied = gw.ledger.admit(checks, time.time())
    if denied is not None:
        raise _limited(denied)
    ctx.checks = checks
    bodies.clamp_hints(call, key)
    outcome: Outcome | None = None
    chain = _chain(gw, service)
    for index, step in enumerate(chain):
        last = index == len(chain) - 1
        if index:
            ctx.fallback = _name(step)
            gw.metrics.fallbacks.inc((service.label, ctx.fallback))
        if isinstance(step, EndpointEntry):
            outcome = await attempt(gw, call, ctx, service, None, step)
        else:
            outcome = await _serve_service(gw, call, ctx, step, last)
        if isinstance(outcome, Delivered):
            return
    assert isinstance(outcome, Failed)  # the chain is never empty
    raise outcome.error


def _chain(gw: Gateway, service: ServiceEntry) -> list[ServiceEntry | EndpointEntry]:
    """Where a request may go: its service, then each fallback step that exists."""
    chain: list[ServiceEntry | EndpointEntry] = [service]
    if not service.spec.fallback:
        return chain
    table = gw.table
    for step in service.spec.fallback:
        if step.service is not None:
            found = table.services_by_name.get((service.namespace, step.service))
            if found is not None:
                chain.append(found)
        elif step.endpoint is not None:
            endpoint = table.endpoints_by_name.get((service.namespace, step.endpoint))
            if endpoint is not None:
                chain.append(endpoint)
    return chain


async def _serve_service(
    gw: Gateway, call: Call, ctx: Context, service: ServiceEntry, last: bool
) -> Outcome:
    now = time.monotonic()
    if not last:
        why = gw.router.unhealthy(service, now)
        if why is not None:
            return Failed(errors.upstream_failed(service.model, why, 503))
        if not gw.router.has_ready(gw.table, service):
            return Failed(errors.no_endpoint(service.model, "no endpoint is ready"))
    elif not gw.router.has_ready(gw.table, service):
        held = await _hold(gw, service)
        if held is not None:
            return held
    request = _route_request(call, ctx, service)
    tried: set[str] = set()
    empty: set[str] = set()
    outcome: Outcome | None = None
    for attempt_no in range(1 + service.spec.retries.attempts):
        choice = gw.router.choose(
            gw.table, service, request, time.monotonic(), tried=tried, empty_routes=empty
        )
        if isinstance(choice, NoEndpoint):
            return outcome or Failed(errors.no_endpoint(service.model, choice.reason))
        if attempt_no:
            ctx.retries += 1
            gw.metrics.retries.inc((service.label,))
        if choice.decision is not None:
            d = choice.decision
            gw.metrics.decisions.inc((service.label, d.strategy, "true" if d.spilled else "false"))
        outcome = await attempt(gw, call, ctx, service, choice, choice.endpoint)
        if isinstance(outcome, Delivered) or not outcome.retryable:
            return outcome
        tried.add(choice.endpoint.name)
    assert outcome is not None  # at least one attempt was made
    return outcome


async def _hold(gw: Gateway, service: ServiceEntry) -> Outcome | None:
    """Wait for a replica of the service's deployments (scale from zero); None once one is
    ready, else the failure to answer."""
    deployments = [
        (service.namespace, r.deployment)
        for r in service.spec.routes
        if r.deployment is not None and r.weight > 0
    ]
    if not deployments:
        return Failed(errors.no_endpoint(service.model, "no endpoint is ready"))
    timeout = service.spec.timeouts.scaleFromZeroSeconds
    held = gw.metrics.held
    held.inc((service.label,))
    try:
        ready = await gw.hold.wait(deployments, timeout)
    except QueueFull as full:
        return Failed(errors.no_endpoint(service.model, f"scale-from-zero queue full: {full}"))
    finally:
        held.inc((service.label,), -1)
    return None if ready else Failed(errors.held_too_long(service.model, timeout), False)


async def attempt(
    gw: Gateway,
    call: Call,
    ctx: Context,
    service: ServiceEntry,
    choice: Choice | None,
    endpoint: EndpointEntry,
) -> Outcome:
    """One try on one endpoint: Delivered once anything reached the client."""
    served = gw.upstreams.known_name(endpoint)
    if served is UNKNOWN:
        served = await gw.upstreams.served_name(endpoint)
    body = bodies.upstream_body(call, endpoint, served)
    timeouts = service.spec.timeouts
    ctx.endpoint = endpoint
    gw.router.started(endpoint)
    sent = time.monotonic()
    try:
        exchange = await gw.upstreams.send(
            endpoint,
            bodies.upstream_path(call, served),
            body,
            connect_timeout=timeouts.connectSeconds,
            first_byte_timeout=timeouts.firstByteSeconds,
            request_id=ctx.request_id,
        )
        if exchange.status in RETRYABLE_STATUS:
            exchange.abandon()
            raise UpstreamError(
                "status", f"{endpoint.name} answered {exchange.status}", before_response=True
            )
        if call.stream and exchange.status == 200:
            outcome = await streaming.relay(gw, call, ctx, service, exchange, choice)
        else:
            outcome = await _whole(gw, call, ctx, service, exchange)
    except UpstreamError as error:
        gw.router.outcome(service, endpoint, time.monotonic(), False, time.monotonic() - sent)
        return Failed(errors.upstream_failed(service.model, f"{endpoint.name}: {error}"), True)
    finally:
        gw.router.finished(endpoint)
    gw.router.outcome(
        service, endpoint, time.monotonic(), True, ctx.first_byte - sent if ctx.first_byte else 0.0
    )
    return outcome


async def _whole(
    gw: Gateway, call: Call, ctx: Context, service: ServiceEntry, exchange: streaming.Exchange
) -> Outcome:
    """A non-streamed answer: read whole, counted, its model name put back, sent."""
    body = exchange.body_if_complete()
    if body is None:
        body = await exchange.read(service.spec.timeouts.requestSeconds)
    ctx.first_byte = time.monotonic()
    status = exchange.status
    content_type = exchange.headers.get(b"content-type", b"application/json")
    if status == 200 and content_type.startswith(b"application/json"):
        body = bodies.account_whole(call, ctx, body)
    headers = (
        (b"x-request-id", ctx.request_id),
        (b"x-inferplane-endpoint", ctx.endpoint.name.encode() if ctx.endpoint else b""),
    )
    ctx.out.send(status, body, content_type, headers)
    ctx.status = status
    return DELIVERED


NO_HINTS = RouteRequest()
"""What most requests tell the router: no prompt to match, no session (one shared object)."""


def _route_request(call: Call, ctx: Context, service: ServiceEntry) -> RouteRequest:
    value = ctx.request.headers.get(service.session_header)
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


__all__ = ["Api", "run"]
