"""informer.follow against a scripted fake server (httpx.MockTransport): resume, retry, relist."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import httpx
import pytest

from inferplane import client as api_client
from inferplane import informer
from inferplane.backoff import Backoff

Handler = Callable[[httpx.Request], httpx.Response]


def model(name: str, version: int) -> dict[str, object]:
    meta = {"name": name, "namespace": "default", "resourceVersion": str(version)}
    return {"apiVersion": "inferplane.dev/v1", "kind": "Model", "metadata": meta, "spec": {}}


def stream(*events: tuple[str, dict[str, object]]) -> httpx.Response:
    body = "".join(json.dumps({"type": t, "object": o}) + "\n" for t, o in events)
    return httpx.Response(
        200, content=body.encode(), headers={"content-type": "application/x-ndjson"}
    )


def gone() -> httpx.Response:
    status = {"kind": "Status", "code": 410, "reason": "Gone", "message": "too old"}
    return httpx.Response(410, json=status)


def scripted(*steps: Handler) -> tuple[api_client.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    script = iter(steps)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(script)(request)

    client = api_client.Client("http://cp", "t", transport=httpx.MockTransport(handle))
    return client, seen


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_follow_resumes_retries_and_relists() -> None:
    listing = {
        "kind": "ModelList",
        "metadata": {"resourceVersion": "40"},
        "items": [model("c", 40)],
    }
    client, seen = scripted(
        lambda r: stream(("ADDED", model("a", 11)), ("MODIFIED", model("a", 12))),
        refuse,
        lambda r: stream(("BOOKMARK", {"metadata": {"resourceVersion": "20"}})),
        lambda r: gone(),
        lambda r: httpx.Response(200, json=listing),
        lambda r: stream(("DELETED", model("c", 41))),
    )
    sleeps: list[float] = []
    events = informer.follow(client, "models", resource_version="10", sleep=sleeps.append)
    got = [(e.type, e.resource_version) for e in itertools.islice(events, 4)]
    assert got == [("ADDED", "11"), ("MODIFIED", "12"), ("RESYNC", "40"), ("DELETED", "41")]
    versions = [r.url.params.get("resourceVersion") for r in seen]
    assert versions == ["10", "12", "12", "20", None, "40"], "each reconnect resumes where it was"
    assert sleeps == [0.2], "a refused connection backs off before retrying"


def test_errors_retrying_cannot_fix_are_raised() -> None:
    def forbidden(request: httpx.Request) -> httpx.Response:
        status = {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"}
        return httpx.Response(403, json=status)

    client, _ = scripted(forbidden)
    with pytest.raises(api_client.Forbidden):
        next(informer.follow(client, "models", resource_version="1"))


def test_retry_delays_double_up_to_the_cap() -> None:
    retry = Backoff(base=0.5, cap=3.0)
    assert [retry.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
