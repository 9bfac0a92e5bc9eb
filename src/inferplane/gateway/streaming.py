"""Relaying a streamed answer, and resuming it elsewhere when it breaks mid-way.

The client's response starts with the first complete event, not with the upstream's head:
until then a failure is still invisible to the client and the request is retried. After it,
a break (reset, idle timeout, an end without [DONE]) is resumed on another endpoint from the
token ids already sent (resume.py), announced by an SSE comment in the stream and by the
`x-inferplane-resumed` trailer.
"""

from __future__ import annotations

import time

import orjson

from inferplane.gateway import resume
from inferplane.gateway.calls import Call
from inferplane.gateway.context import Context, Gateway
from inferplane.gateway.outcomes import DELIVERED, Outcome
from inferplane.gateway.router import Choice
from inferplane.gateway.sse import StreamTracker
from inferplane.gateway.table import ServiceEntry
from inferplane.gateway.wire.upstream import Exchange, UpstreamError
from inferplane.policy.routing.decisions import NoEndpoint
from inferplane.policy.routing.requests import RouteRequest

RESUMED = b"x-inferplane-resumed"

__all__ = ["Exchange", "relay"]


async def relay(
    gw: Gateway,
    call: Call,
    ctx: Context,
    service: ServiceEntry,
    exchange: Exchange,
    choice: Choice | None,
) -> Outcome:
    tracker = StreamTracker(
        call.model,
        strip_ids=not call.wants_token_ids,
        strip_usage=not call.wants_usage,
        track_ids=call.resumable,
    )
    broken = await _pump(ctx, service, exchange, tracker)
    if broken is not None and not ctx.out.started:
        raise broken  # nothing sent yet: the caller retries elsewhere
    tried = {ctx.endpoint.name} if ctx.endpoint else set()
    while broken is not None:
        if not (call.resumable and service.spec.retries.resumeStreams) or (
            tracker.resumes >= service.spec.retries.attempts
        ):
            await _give_up(ctx, tracker, f"the upstream broke off: {broken}")
            break
        broken = await _resume(gw, call, ctx, service, tracker, tried, broken)
    _finish(call, ctx, tracker)
    return DELIVERED


async def _pump(
    ctx: Context, service: ServiceEntry, exchange: Exchange, tracker: StreamTracker
) -> UpstreamError | None:
    """Forward events until the upstream ends; the error when it broke off instead.

    Events go out from inside the upstream connection's callback (`Exchange.pump`): no task
    switch per event, and a client that reads slowly pauses the upstream.
    """
    out = ctx.out

    def forward(data: bytes) -> None:
        events = tracker.feed(data)
        if not events:
            return
        if not out.started:
            ctx.first_byte = time.monotonic()
            ctx.status = 200
            out.start(200, b"text/event-stream", _headers(ctx))
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
    gw: Gateway,
    call: Call,
    ctx: Context,
    service: ServiceEntry,
    tracker: StreamTracker,
    tried: set[str],
    broken: UpstreamError,
) -> UpstreamError | None:
    """One try at continuing the stream on an endpoint not yet tried; None once finished."""
    if tracker.finished:
        tracker.done = True  # only the [DONE] was lost: nothing to continue
        await ctx.out.chunk(b"data: [DONE]\n\n")
        return None
    tracker.resumes += 1
    request = RouteRequest(prompt_text="", session=None)
    choice = gw.router.choose(
        gw.table, service, request, time.monotonic(), tried=tried, empty_routes=set()
    )
    if isinstance(choice, NoEndpoint) or choice.endpoint.external:
        why = choice.reason if isinstance(choice, NoEndpoint) else "only external endpoints left"
        return UpstreamError(
            "reset", f"{broken}; no endpoint to resume on: {why}", before_response=False
        )
    endpoint = choice.endpoint
    tried.add(endpoint.name)
    served = await gw.upstreams.served_name(endpoint)
    body = resume.continuation(call, tracker, served)
    if body is None:
        return UpstreamError(
            "reset", f"{broken}; the stream cannot be resumed", before_response=False
        )
    ctx.resumes += 1
    ctx.endpoint = endpoint
    gw.metrics.resumes.inc((service.label,))
    note = f": inferplane resumed this stream on {endpoint.name} after {len(tracker.ids)} tokens"
    await ctx.out.chunk(note.encode() + b"\n\n")
    tracker.reshape = resume.Reshaper(call, tracker).chunk
    gw.router.started(endpoint)
    try:
        exchange = await gw.upstreams.send(
            endpoint,
            b"/v1/completions",
            orjson.dumps(body),
            connect_timeout=service.spec.timeouts.connectSeconds,
            first_byte_timeout=service.spec.timeouts.firstByteSeconds,
            request_id=ctx.request_id,
        )
        if exchange.status != 200:
            exchange.abandon()
            return UpstreamError(
                "status", f"{endpoint.name} answered {exchange.status}", before_response=False
            )
        return await _pump(ctx, service, exchange, tracker)
    except UpstreamError as error:
        return error
    finally:
        gw.router.finished(endpoint)


async def _give_up(ctx: Context, tracker: StreamTracker, why: str) -> None:
    """End a stream that cannot be completed with an error event, as OpenAI does."""
    ctx.cause = "upstream"
    error = {
        "error": {"message": why, "type": "server_error", "param": None, "code": "stream_broken"}
    }
    await ctx.out.chunk(b"data: " + orjson.dumps(error) + b"\n\n")
    await ctx.out.chunk(b"data: [DONE]\n\n")


def _finish(call: Call, ctx: Context, tracker: StreamTracker) -> None:
    ctx.prompt_tokens = tracker.prompt_tokens
    ctx.completion_tokens = tracker.completion_tokens
    trailers = ((RESUMED, str(tracker.resumes).encode()),) if tracker.resumes else ()
    ctx.out.end(trailers)


def _headers(ctx: Context) -> list[tuple[bytes, bytes]]:
    endpoint = ctx.endpoint.name.encode() if ctx.endpoint else b""
    return [
        (b"x-request-id", ctx.request_id),
        (b"x-inferplane-endpoint", endpoint),
        (b"trailer", RESUMED),
    ]
