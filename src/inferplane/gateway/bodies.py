"""What goes upstream and what comes back: the request body for an endpoint (the client's,
changed only where it must be), and the usage read off a whole answer."""

from __future__ import annotations

from typing import Protocol

import orjson

from inferplane.gateway import errors
from inferplane.gateway.calls import Call
from inferplane.gateway.table import EndpointEntry, KeyEntry

SCHEDULING_HINTS = frozenset(("priority",))
"""Engine-side fields that order one request against others (vLLM's `priority`, which the
reference engine reads too): a tenant's key must not jump the queue of a shared replica, so
only a key with the `admin` role of its namespace may set them; the gateway drops them from
anyone else's request. V2 requests carry them in `parameters`."""


class Counts(Protocol):
    """Where the usage of an answer is written (the request's pipeline.RequestRun)."""

    prompt_tokens: int
    completion_tokens: int


def account_whole(call: Call, ctx: Counts, body: bytes) -> bytes:
    """The answer to send for `body`, its usage written to `ctx`: as it came when it already
    names the client's model, else with the model put back."""
    if not call.api.v2 and _usage_at_end(ctx, body) and _names_model(body, call.model):
        return body  # the usual answer: read its usage, send it as it came
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(obj, dict):
        return body
    usage = obj.get("usage")
    if isinstance(usage, dict):
        ctx.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        ctx.completion_tokens = int(usage.get("completion_tokens") or 0)
    if call.api.v2 or obj.get("model") == call.model:
        return body
    obj["model"] = call.model
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return body  # nested deeper than orjson writes: passed on as the upstream sent it


def _usage_at_end(ctx: Counts, body: bytes) -> bool:
    """Read `"usage": {...}` where OpenAI-shaped servers put it, last, without parsing the
    whole answer; False when it is not there."""
    at = body.rfind(b'"usage":')
    if at < 0 or not body.endswith(b"}"):
        return False
    try:
        usage = orjson.loads(body[at + 8 : -1])
    except orjson.JSONDecodeError:
        return False
    if not isinstance(usage, dict):
        return False
    ctx.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    ctx.completion_tokens = int(usage.get("completion_tokens") or 0)
    return True


def _names_model(body: bytes, model: str) -> bool:
    """The answer already names the client's model (so it needs no rewriting)."""
    return b'"model":' + orjson.dumps(model) in body or b'"model": ' + orjson.dumps(model) in body


def upstream_body(call: Call, endpoint: EndpointEntry, served: str | None) -> bytes:
    """The request body for this endpoint: the client's, with only what must change."""
    changes: dict[str, object] = {}
    if served is not None and served != call.model and not call.api.v2:
        changes["model"] = served
    if call.stream and call.api.generates:
        if not call.wants_usage:
            options = call.body.get("stream_options") or {}
            changes["stream_options"] = {**options, "include_usage": True}
        if call.resumable and not endpoint.external and not call.wants_token_ids:
            changes["return_token_ids"] = True
    if not changes:
        return call.raw
    return _encode(call.body | changes)


def clamp_hints(call: Call, key: KeyEntry) -> None:
    """Drop the scheduling hints `key` may not set from the call's body (and its raw bytes,
    which go upstream as they are when nothing else changes)."""
    if key.role == "admin":
        return
    holder = call.body.get("parameters") if call.api.v2 else call.body
    if not isinstance(holder, dict) or SCHEDULING_HINTS.isdisjoint(holder):
        return  # the usual request: nothing to drop, nothing re-encoded
    kept = {name: value for name, value in holder.items() if name not in SCHEDULING_HINTS}
    call.body = (call.body | {"parameters": kept}) if call.api.v2 else kept
    call.raw = _encode(call.body)


def _encode(body: dict[str, object]) -> bytes:
    """A changed request body as JSON; a 400 when it nests deeper than orjson writes (254
    levels, while it reads 1024): such a body was a 500 before (found by fuzzing)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        message = "the request body is nested too deeply (at most 254 levels)"
        raise errors.bad_request(message) from None


def upstream_path(call: Call, served: str | None) -> bytes:
    if call.api.v2:
        return f"/v2/models/{served or call.model}/{call.api.value}".encode()
    return call.api.value.encode()
