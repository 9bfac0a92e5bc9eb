"""Failed authentications are limited per source address, by the control plane and by the
gateway: after 10 refused tokens a minute, an address gets 429 with Retry-After, whatever it
sends, until its bucket refills; other addresses, and requests without a token, are not
limited. Each test speaks from its own loopback address (127.0.0.0/8 is all loopback), so
no other test sharing 127.0.0.1 is held back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.manifests import path
from tests.support.control import ControlProcess
from tests.support.gateway_process import GatewayProcess, StubProcess, api_key, endpoint, service

pytestmark = pytest.mark.integration

KEY = "sk-limit-test"
LIMIT = 10


def client_from(address: str, base_url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, headers=headers, transport=transport, timeout=10)


def test_the_control_plane_refuses_an_address_that_failed_too_often(
    control: ControlProcess,
) -> None:
    models = path("models", "default")
    with (
        client_from("127.0.0.21", control.url, "ipk_guess") as guesser,
        client_from("127.0.0.21", control.url, control.admin_token) as same_address,
        client_from("127.0.0.21", control.url, None) as no_token,
        client_from("127.0.0.22", control.url, "ipk_guess") as neighbour,
    ):
        for _ in range(LIMIT // 2):
            assert guesser.get(models).status_code == 401
        for _ in range(3 * LIMIT):  # successes and missing tokens take nothing
            assert same_address.get(models).status_code == 200
            assert no_token.get(models).status_code == 401
        for _ in range(LIMIT - LIMIT // 2):
            assert guesser.get(models).status_code == 401
        limited = guesser.get(models)
        valid_too = same_address.get(models)
        other = neighbour.get(models)
    assert limited.status_code == 429
    status = limited.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "TooManyRequests", 429)
    assert "127.0.0.21" in status["message"]
    wait = int(limited.headers["retry-after"])
    assert 1 <= wait <= 60 and status["details"]["retryAfterSeconds"] == wait
    assert valid_too.status_code == 429, "the token is not even looked at"
    assert other.status_code == 401, "another address is not limited"

    with control.http() as admin:
        records = admin.get(path("audit"), params={"user": "anonymous"}).json()["items"]
    limited_calls = [r for r in records if r["code"] == 429]
    assert limited_calls and {r["sourceAddress"] for r in limited_calls} == {"127.0.0.21"}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    stub = StubProcess(tmp_path, "up").start()
    config = [service("svc", [{"deployment": "d"}]), endpoint("d-0", stub.url, "d")]
    gw = GatewayProcess(tmp_path, config=[*config, api_key("main", KEY)])
    gw.start()
    yield gw
    gw.stop()
    stub.stop()


def test_the_gateway_refuses_an_address_that_failed_too_often(gateway: GatewayProcess) -> None:
    body = {"model": "svc", "prompt": "hi"}
    with (
        client_from("127.0.0.31", gateway.url, "sk-guess") as guesser,
        client_from("127.0.0.31", gateway.url, KEY) as same_address,
        client_from("127.0.0.32", gateway.url, KEY) as neighbour,
    ):
        for _ in range(LIMIT):
            assert same_address.post("/v1/completions", json=body).status_code == 200
            assert guesser.post("/v1/completions", json=body).status_code == 401
        limited = guesser.post("/v1/completions", json=body)
        models = same_address.get("/v1/models")
        other = neighbour.post("/v1/completions", json=body)
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "rate_limit_exceeded",
        "too_many_auth_failures",
        None,
    )
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert models.status_code == 429 and models.headers["retry-after"], "every route"
    assert other.status_code == 200, "another address is served"

    http = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.31"))
    with (
        openai.OpenAI(
            base_url=f"{gateway.url}/v1", api_key=KEY, http_client=http, max_retries=0
        ) as client,
        pytest.raises(openai.RateLimitError) as raised,
    ):
        client.completions.create(model="svc", prompt="hi")
    assert raised.value.code == "too_many_auth_failures"
