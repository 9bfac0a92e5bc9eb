"""Relaying a streamed answer, and resuming it elsewhere when it breaks mid-way.

The client's response starts with the first complete event, not with the upstream's head:
until then a failure is still invisible to the client and the request is retried. After it,
a break (reset, idle timeout, an end without [DONE]) is resumed on another endpoint from the
token ids already sent (resume.py), announced by an SSE comment in the stream and by the
`x-inferplane-resumed` trailer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from inferplane.gateway import resume
from inferplane.gateway.outcomes import DELIVERED, Outcome
from inferplane.gateway.sse import StreamTracker
from inferplane.gateway.table import ServiceEntry
from inferplane.gateway.upstreams import UNKNOWN
from inferplane.gateway.wire.upstream import Exchange, UpstreamError
from inferplane.policy.routing import retries
from inferplane.policy.routing.decisions import NoEndpoint
from inferplane.policy.routing.requests import RouteRequest

if TYPE_CHECKING:
    from inferplane.gateway.pipeline import RequestRun

RESUMED = b"x-inferplane-resumed"
ANYWHERE = RouteRequest()
"""A continuation's routing hints: none (its prefix is the first endpoint's; no session)."""

__all__ = ["Exchange", "relay"]


async def relay(run: RequestRun, service: ServiceEntry, exchange: Exchange) -> Outcome:
    """Stream the answer to the client, resuming it elsewhere while it breaks and may be."""
    call = run.call
    tracker = StreamTracker(
        call.model,
        strip_ids=not call.wants_token_ids,
        strip_usage=not call.wants_usage,
        track_ids=call.resumable,
    )
    broken = await _pump(run, service, exchange, tracker)
    if broken is not None and not run.out.started:
        raise broken  # nothing sent yet: the caller retries elsewhere
    tried = {run.endpoint.name} if run.endpoint else set()
    while broken is not None:
        if not retries.may_resume(
            service.spec.retries, resumable=call.resumable, resumes=tracker.resumes
        ):
            await _give_up(run, f"the upstream broke off: {broken}")
            break
        broken = await _resume(run, service, tracker, tried, broken)
    _finish(run, tracker)
    return DELIVERED


async def _pump(
    run: RequestRun, service: ServiceEntry, exchange: Exchange, tracker: StreamTracker
) -> UpstreamError | None:
    """Forward events until the upstream ends; the error when it broke off instead.

    Events go out from inside the upstream connection's callback (`Exchange.pump`): no task
    switch per event, and a client that reads slowly pauses the upstream.
    """
    out = run.out

    def forward(data: bytes) -> None:
        events = tracker.feed(data)
        if not events:
            return
        if not out.started:
            run.first_byte = time.monotonic()
            run.status = 200
            out.start(200, b"text/event-stream", _headers(run))
        flowing = True
        for event in events:
            flowing = out.push(event)
        if not flowing:
            exchange.pause()
            out.on_drained(exchange.resume)

    try:
        await exchange.pump(forward, service.spec.timeouts.idleSeconds)
    except UpstreamError as error:
        return error
    finally:
        exchange.abandon()
    if not tracker.done:
        return UpstreamError(
            "reset", "the stream ended without [DONE]", before_response=not out.started
        )
    return None


async def _resume(
    run: RequestRun,
    service: ServiceEntry,
    tracker: StreamTracker,
    tried: set[str],
    broken: UpstreamError,
) -> UpstreamError | None:
    """One try at continuing the stream on an endpoint not yet tried; None once finished."""
    if tracker.finished:
        tracker.done = True  # only the [DONE] was lost: nothing to continue
        await run.out.chunk(b"data: [DONE]\n\n")
        return None
    tracker.resumes += 1
    gw = run.gw
    choice = gw.router.choose(
        gw.table, service, ANYWHERE, time.monotonic(), tried=tried, empty_routes=set()
    )
    if isinstance(choice, NoEndpoint) or choice.endpoint.external:
        why = choice.reason if isinstance(choice, NoEndpoint) else "only external endpoints left"
        return UpstreamError(
            "reset", f"{broken}; no endpoint to resume on: {why}", before_response=False
        )
    endpoint = choice.endpoint
    tried.add(endpoint.name)
    served = gw.upstreams.known_name(endpoint)
    if served is UNKNOWN:
        served = await gw.upstreams.served_name(endpoint)
    body = resume.continuation(run.call, tracker, served)
    if body is None:
        return UpstreamError(
            "reset", f"{broken}; the stream cannot be resumed", before_response=False
        )
    run.resumes += 1
    run.endpoint = endpoint
    gw.metrics.resumes.inc((service.label,))
    note = f": inferplane resumed this stream on {endpoint.name} after {len(tracker.ids)} tokens"
    await run.out.chunk(note.encode() + b"\n\n")
    tracker.reshape = resume.Reshaper(run.call, tracker).chunk
    gw.router.started(endpoint)
    try:
        exchange = await run.send(service, endpoint, resume.PATH, orjson.dumps(body))
        run.check(exchange, endpoint, whole=False)
        return await _pump(run, service, exchange, tracker)
    except UpstreamError as error:
        return error
    finally:
        gw.router.finished(endpoint)


async def _give_up(run: RequestRun, why: str) -> None:
    """End a stream that cannot be completed with an error event, as OpenAI does."""
    run.cause = "upstream"
    error = {
        "error": {"message": why, "type": "server_error", "param": None, "code": "stream_broken"}
    }
    await run.out.chunk(b"data: " + orjson.dumps(error) + b"\n\n")
    await run.out.chunk(b"data: [DONE]\n\n")


def _finish(run: RequestRun, tracker: StreamTracker) -> None:
    run.prompt_tokens = tracker.prompt_tokens
    run.completion_tokens = tracker.completion_tokens
    trailers = ((RESUMED, str(tracker.resumes).encode()),) if tracker.resumes else ()
    run.out.end(trailers)


def _headers(run: RequestRun) -> list[tuple[bytes, bytes]]:
    endpoint = run.endpoint.name.encode() if run.endpoint else b""
    return [
        (b"x-request-id", run.request_id),
        (b"x-inferplane-endpoint", endpoint),
        (b"trailer", RESUMED),
    ]
