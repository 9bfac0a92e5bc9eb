"""errors.install: FastAPI's own errors (unknown route, wrong method, failed validation, a
bug) in OpenAI's error shape, or V2's `{"error": "..."}` under /v2."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from inferplane.engine.server import errors


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    for prefix in ("/v1", "/v2"):

        @app.get(f"{prefix}/count")
        async def count(limit: int) -> dict[str, int]:
            return {"limit": limit}

        @app.get(f"{prefix}/bug")
        async def bug() -> None:
            raise KeyError("oops")

        @app.get(f"{prefix}/refused")
        async def refused() -> None:
            raise errors.APIError("top_p: out of range", param="top_p")

    return app


def call(method: str, path: str) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
            return await client.request(method, path)

    return asyncio.run(main())


def openai_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def v2_error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    return str(body["error"])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("POST", "/count", 405),
        ("GET", "/count?limit=many", 400),
        ("GET", "/bug", 500),
        ("GET", "/refused", 400),
    ],
)
def test_each_protocol_gets_its_own_error_shape(method: str, path: str, status: int) -> None:
    v1 = call(method, f"/v1{path}")
    assert v1.status_code == status
    error = openai_error(v1)
    assert error["message"]
    v2 = call(method, f"/v2{path}")
    assert v2.status_code == status
    assert v2_error(v2)


def test_details_survive_the_reshaping() -> None:
    not_allowed = call("POST", "/v1/count")
    assert not_allowed.headers["allow"] == "GET"
    invalid = openai_error(call("GET", "/v1/count?limit=many"))
    assert invalid["param"] == "limit" and invalid["type"] == "invalid_request_error"
    assert "limit" in v2_error(call("GET", "/v2/count?limit=many"))
    assert openai_error(call("GET", "/v1/refused"))["param"] == "top_p"
    assert "KeyError" in openai_error(call("GET", "/v1/bug"))["message"]
    assert openai_error(call("GET", "/v1/nope"))["message"] == "Invalid URL (GET /v1/nope)"
