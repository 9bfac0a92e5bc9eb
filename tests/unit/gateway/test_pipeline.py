"""One request's run with fake upstreams: retries on another endpoint, the fallback chain,
and the health verdict that skips an unhealthy service for its fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from inferplane.gateway.app import GatewayApp
from inferplane.gateway.table import EndpointEntry
from inferplane.gateway.wire.server import Request
from inferplane.gateway.wire.upstream import UpstreamError
from tests.unit.gateway.objects import api_key, endpoint, service, table_of

TOKEN = "sk-test"
ANSWER = b'{"model":"m","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3}}'


class Answer:
    """An upstream's whole answer, as an Exchange offers it."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.headers = {b"content-type": b"application/json"}

    def body_if_complete(self) -> bytes:
        return ANSWER

    def abandon(self) -> None:
        pass


class Upstreams:
    """Answers each endpoint with its scripted status; None refuses the connection."""

    def __init__(self, statuses: dict[str, int | None]) -> None:
        self.statuses = statuses
        self.sent: list[str] = []

    def known_name(self, endpoint: EndpointEntry) -> None:
        return None

    async def send(self, endpoint: EndpointEntry, path: bytes, body: bytes, **_: Any) -> Answer:
        self.sent.append(endpoint.name)
        status = self.statuses[endpoint.name]
        if status is None:
            raise UpstreamError("connect", "refused", before_response=True)
        return Answer(status)


class Out:
    """What the client got."""

    def __init__(self) -> None:
        self.started = False
        self.status = 0
        self.headers: dict[bytes, bytes] = {}

    def send(self, status: int, body: bytes, content_type: bytes = b"", headers: Any = ()) -> None:
        self.started, self.status, self.headers = True, status, dict(headers)


def app_with(*objects: dict[str, Any], statuses: dict[str, int | None]) -> GatewayApp:
    app = GatewayApp(seed=1)
    app.set_table(table_of(api_key("k", TOKEN), *objects))
    app.upstreams = Upstreams(statuses)  # type: ignore[assignment]
    return app


def ask(app: GatewayApp, model: str = "main") -> Out:
    request = Request(b"POST", b"/v1/chat/completions", None)
    request.headers[b"authorization"] = f"Bearer {TOKEN}".encode()
    messages = [{"role": "user", "content": "hi"}]
    request.body = orjson.dumps({"model": model, "messages": messages})
    out = Out()
    pending = app.handle(request, out)  # type: ignore[arg-type]
    if pending is not None:
        asyncio.run(_wait(pending))
    return out


async def _wait(pending: Any) -> None:
    await pending


def sent(app: GatewayApp) -> list[str]:
    upstreams = app.upstreams
    assert isinstance(upstreams, Upstreams)
    return upstreams.sent


def test_a_failed_endpoint_is_retried_on_another() -> None:
    app = app_with(
        service("main", [{"deployment": "d"}], strategy="round-robin"),
        endpoint("d-0", "d"),
        endpoint("d-1", "d"),
        statuses={"d-0": 503, "d-1": 200},
    )
    out = ask(app)
    assert out.status == 200 and out.headers[b"x-inferplane-endpoint"] == b"d-1"
    assert sent(app) == ["d-0", "d-1"]
    assert app.metrics.retries.values.get(("default/main",)) == 1


def test_a_client_error_is_passed_on_and_not_retried() -> None:
    app = app_with(
        service("main", [{"deployment": "d"}], strategy="round-robin"),
        endpoint("d-0", "d"),
        endpoint("d-1", "d"),
        statuses={"d-0": 400, "d-1": 200},
    )
    assert ask(app).status == 400
    assert sent(app) == ["d-0"]


def test_when_every_try_fails_the_fallback_service_answers() -> None:
    app = app_with(
        service("main", [{"deployment": "d"}], fallback=["small"]),
        service("small", [{"deployment": "s"}]),
        endpoint("d-0", "d"),
        endpoint("s-0", "s"),
        statuses={"d-0": None, "s-0": 200},
    )
    out = ask(app)
    assert out.status == 200 and out.headers[b"x-inferplane-endpoint"] == b"s-0"
    assert app.metrics.fallbacks.values.get(("default/main", "service/small")) == 1


def test_an_unhealthy_service_is_skipped_for_its_fallback_but_a_last_one_is_not() -> None:
    when = {"minRequests": 2, "errorRate": 0.5}
    app = app_with(
        service("main", [{"deployment": "d"}], fallback=["small"], fallbackWhen=when),
        service("small", [{"deployment": "s"}], fallbackWhen=when, retries={"attempts": 0}),
        endpoint("d-0", "d"),
        endpoint("s-0", "s"),
        statuses={"d-0": None, "s-0": None},
    )
    assert ask(app).status == 502
    assert ask(app).status == 502
    assert sent(app) == ["d-0", "s-0", "d-0", "s-0"]
    app.upstreams = Upstreams({"d-0": 200, "s-0": 200})  # type: ignore[assignment]
    assert ask(app).status == 200
    assert sent(app) == ["s-0"], "main's error rate is over its bound: straight to small"
    assert ask(app, "small").status == 200, "small is the last of its own chain: tried"
