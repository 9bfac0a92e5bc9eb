"""auth.TokenCheck: the per-replica token on every route but the probes, refused in each
protocol's own error shape."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from inferplane.engine.server import auth, errors

TOKEN = "tok-3f9a"
PATHS = (
    "/health",
    "/metrics",
    "/v1/models",
    "/v1/completions",
    "/tokenize",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/tiny",
    "/v2/models/tiny/ready",
    "/v2/models/tiny/versions/1/ready",
    "/v2/models/tiny/infer",
)


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.add_middleware(auth.TokenCheck, token=TOKEN)
    for path in PATHS:
        app.add_api_route(path, _ok, methods=["GET"])
    return app


async def _ok() -> dict[str, bool]:
    return {"ok": True}


def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(main())


@pytest.mark.parametrize(
    "path",
    ["/health", "/metrics", "/v2/health/live", "/v2/health/ready", "/v2/models/tiny/ready"],
)
def test_the_probes_and_the_scrape_stay_open(path: str) -> None:
    assert get(path).status_code == 200
    assert auth.is_open(path)


@pytest.mark.parametrize(
    "path", ["/v1/models", "/v1/completions", "/tokenize", "/v2", "/v2/models/tiny/infer"]
)
def test_every_other_route_needs_the_token(path: str) -> None:
    refused = get(path)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert get(path, {"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert get(path, {"Authorization": f"bearer {TOKEN}"}).status_code == 200  # any case


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer ", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"],
)
def test_a_missing_or_wrong_token_is_refused(authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else None
    assert get("/v1/completions", headers).status_code == 401


def test_openai_routes_refuse_in_openais_shape() -> None:
    body = get("/v1/completions", {"Authorization": "Bearer nope"}).json()
    assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["param"] is None
    assert "nope" not in body["error"]["message"]  # the sent token is never echoed


def test_v2_routes_refuse_in_v2s_shape() -> None:
    body = get("/v2/models/tiny/infer").json()
    assert set(body) == {"error"} and isinstance(body["error"], str)


def test_an_unknown_path_is_refused_before_it_is_looked_up() -> None:
    assert get("/nowhere").status_code == 401  # guarded by default, not by listing


@pytest.mark.parametrize("token", ["", " ", "two words", "tab\there", "naïve"])
def test_a_token_no_client_could_send_is_refused(token: str) -> None:
    with pytest.raises(auth.TokenError):
        auth.check_token(token)
