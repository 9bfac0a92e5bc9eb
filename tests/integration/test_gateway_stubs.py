"""The gateway against scripted upstreams (real processes, real HTTP): splits, keys, limits,
budgets, retries, resumption, fallbacks, disconnects, errors, metrics and the access log."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.gateway_process import (
    GatewayProcess,
    StubProcess,
    api_key,
    endpoint,
    service,
    token_hash,
)

pytestmark = pytest.mark.integration

KEY = "sk-gateway-test"
SECRET = "upstream-secret-123"


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, StubProcess]]:
    work = tmp_path_factory.mktemp("stubs")
    made = {
        "a": StubProcess(work, "a"),
        "b": StubProcess(work, "b"),
        "dead": StubProcess(work, "dead", "fail503"),
        "closer": StubProcess(work, "closer", "close"),
        "breaker": StubProcess(work, "breaker", "break", ["--break-after", "3"]),
        "ext": StubProcess(work, "ext"),
        "slow": StubProcess(work, "slow", extra=["--chunks", "400"]),
    }
    for stub in made.values():
        stub.start()
    yield made
    for stub in made.values():
        stub.stop()


def _config(s: dict[str, StubProcess]) -> list[dict[str, object]]:
    return [
        service(
            "split",
            [{"deployment": "da", "weight": 90}, {"deployment": "db", "weight": 10}],
            strategy="round-robin",
        ),
        endpoint("a-0", s["a"].url, "da"),
        endpoint("b-0", s["b"].url, "db"),
        service("retry", [{"deployment": "flaky"}], strategy="round-robin"),
        endpoint("f0-dead", s["dead"].url, "flaky"),
        endpoint("f1-closer", s["closer"].url, "flaky"),
        endpoint("f2-good", s["a"].url, "flaky"),
        service(
            "priced",
            [{"deployment": "da"}],
            pricing={"inputPer1kTokens": 1000.0, "outputPer1kTokens": 1000.0},
        ),
        service("fallback", [{"deployment": "gone"}], fallback=[{"endpoint": "ext"}]),
        endpoint("g0", s["dead"].url, "gone"),
        endpoint(
            "ext",
            s["ext"].url,
            external=True,
            upstreamModel="gpt-x",
            apiKeySecretRef={"env": "EXT_KEY"},
        ),
        service("resumable", [{"deployment": "brk"}], strategy="round-robin"),
        endpoint("b0-breaker", s["breaker"].url, "brk"),
        endpoint("b1-good", s["b"].url, "brk"),
        service("slow", [{"deployment": "slow"}]),
        endpoint("slow-0", s["slow"].url, "slow"),
        api_key("main", KEY),
        api_key("ratey", "sk-ratey", rateLimits={"requestsPerMinute": 3}),
        api_key("poor", "sk-poor", budget={"cost": 10.0, "period": "day"}),
        {
            "kind": "Service",
            "metadata": {"name": "shared", "namespace": "team-q"},
            "spec": {"routes": [{"deployment": "qa"}]},
        },
        {
            "kind": "Endpoint",
            "metadata": {"name": "qa-0", "namespace": "team-q"},
            "spec": {"url": s["a"].url, "deployment": "qa", "replica": "qa-0"},
            "status": {"ready": True},
        },
        {
            "kind": "Quota",
            "metadata": {"name": "team", "namespace": "team-q"},
            "spec": {"rateLimits": {"requestsPerMinute": 3}},
        },
        *(
            {
                "kind": "ApiKey",
                "metadata": {"name": f"member-{i}", "namespace": "team-q"},
                "spec": {"tokenHash": token_hash(f"sk-member-{i}")},
            }
            for i in range(2)
        ),
        {
            "kind": "Service",
            "metadata": {"name": "elsewhere", "namespace": "other"},
            "spec": {"routes": [{"deployment": "da"}]},
        },
    ]


@pytest.fixture(scope="module")
def gateway(
    stubs: dict[str, StubProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    work = tmp_path_factory.mktemp("gateway")
    gw = GatewayProcess(
        work,
        config=_config(stubs),
        env={"EXT_KEY": SECRET},
        extra=["--access-log", str(work / "access.log"), "--allow-secret-env", "EXT_KEY"],
    )
    gw.start()
    yield gw
    gw.stop()


def test_openai_client_chats_streams_completes_and_embeds(gateway: GatewayProcess) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY) as client:
        chat = client.chat.completions.create(
            model="slow", messages=[{"role": "user", "content": "hi"}]
        )
        assert chat.choices[0].message.content == "answer from slow"
        assert chat.model == "slow"  # the engine's own name never leaks
        stream = client.chat.completions.create(
            model="split", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        pieces = [c.choices[0].delta.content for c in stream if c.choices]
        assert "".join(p or "" for p in pieces) == "".join(f"t{i} " for i in range(8))
        text = client.completions.create(model="split", prompt="hello")
        assert text.choices[0].text.startswith("answer from")
        assert text.usage is not None and text.usage.total_tokens == 15
        vectors = client.embeddings.create(model="split", input="hello")
        assert vectors.data[0].embedding == [0.5, 0.25]
        assert [m.id for m in client.models.list()] == sorted(
            ["split", "retry", "priced", "fallback", "resumable", "slow"]
        )


def test_a_90_10_split_lands_within_3_points_over_2000_requests(
    gateway: GatewayProcess,
) -> None:
    seen: Counter[str] = Counter()
    body = {"model": "split", "prompt": "x", "max_tokens": 1}
    with gateway.http(KEY) as http:
        for _ in range(2000):
            response = http.post("/v1/completions", json=body)
            assert response.status_code == 200
            seen[response.headers["x-inferplane-endpoint"]] += 1
    assert abs(seen["a-0"] / 2000 - 0.90) <= 0.03, seen
    assert seen["a-0"] + seen["b-0"] == 2000


def test_usage_chunks_and_token_ids_the_gateway_added_are_not_shown(
    gateway: GatewayProcess, stubs: dict[str, StubProcess]
) -> None:
    with (
        gateway.http(KEY) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "slow",
                "stream": True,
                "max_tokens": 2,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as response,
    ):
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    sent = stubs["slow"].stats()["last_body"]
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["return_token_ids"] is True
    assert sent["model"] == "served-slow"
    events = [json.loads(line[6:]) for line in lines]
    assert all("usage" not in e and e["choices"] for e in events)
    assert all("token_ids" not in c for e in events for c in e["choices"])


def test_failures_before_the_first_byte_are_retried_elsewhere(gateway: GatewayProcess) -> None:
    before = gateway.metric("inferplane_gateway_retries_total", service="default/retry")
    with gateway.http(KEY) as http:
        for _ in range(3):
            response = http.post("/v1/completions", json={"model": "retry", "prompt": "x"})
            assert response.status_code == 200, response.text
            assert response.headers["x-inferplane-endpoint"] == "f2-good"
    assert gateway.metric("inferplane_gateway_retries_total", service="default/retry") > before


def test_a_stream_broken_mid_way_is_resumed_from_its_token_ids(
    gateway: GatewayProcess, stubs: dict[str, StubProcess]
) -> None:
    request = {
        "model": "resumable",
        "stream": True,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST",
            f"{gateway.url}/v1/chat/completions",
            json=request,
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response,
    ):
        raw = b"".join(response.iter_raw())
    text = raw.decode()
    assert ": inferplane resumed this stream on b1-good after 3 tokens" in text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    content = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    assert content == "t0 t1 t2 " + "".join(f"t{i} " for i in range(8))
    assert {e["id"] for e in events} == {"x-breaker"}
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert text.rstrip().endswith("data: [DONE]")
    resumed = stubs["b"].stats()["last_body"]
    assert resumed["prompt"] == [1, 2, 3, 100, 101, 102]
    assert resumed["max_tokens"] == 17
    assert gateway.metric("inferplane_gateway_resumes_total", service="default/resumable") == 1


def test_the_resumed_trailer_is_sent(gateway: GatewayProcess) -> None:
    """The response head went out before the break, so the resumption is a trailer."""
    import socket

    body = json.dumps({"model": "resumable", "stream": True, "prompt": "x"}).encode()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(head + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert b"trailer: x-inferplane-resumed" in received
    assert b"0\r\nx-inferplane-resumed: 1\r\n\r\n" in received


def test_a_client_that_leaves_cancels_the_upstream_request(
    gateway: GatewayProcess, stubs: dict[str, StubProcess]
) -> None:
    with (
        gateway.http(KEY) as http,
        http.stream(
            "POST", "/v1/completions", json={"model": "slow", "stream": True, "prompt": "x"}
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break
    deadline = time.monotonic() + 5
    while stubs["slow"].stats()["disconnects"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stubs["slow"].stats()["disconnects"] == 1


def test_fallback_to_an_external_upstream_with_its_secret(
    gateway: GatewayProcess, stubs: dict[str, StubProcess]
) -> None:
    with gateway.http(KEY) as http:
        response = http.post(
            "/v1/chat/completions",
            json={"model": "fallback", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "answer from ext"
    seen = stubs["ext"].stats()
    assert seen["last_auth"] == f"Bearer {SECRET}"
    assert seen["last_body"]["model"] == "gpt-x"
    assert gateway.metric("inferplane_gateway_fallbacks_total", target="endpoint/ext") >= 1
    assert SECRET not in gateway.log_path.read_text()


def test_keys_are_checked(gateway: GatewayProcess) -> None:
    body = {"model": "split", "prompt": "x"}
    missing = httpx.post(f"{gateway.url}/v1/completions", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    wrong = httpx.post(
        f"{gateway.url}/v1/completions", json=body, headers={"Authorization": "Bearer sk-nope"}
    )
    assert wrong.status_code == 401
    assert "unknown or revoked" in wrong.json()["error"]["message"]


def test_a_key_over_its_rate_gets_429_naming_the_limit(gateway: GatewayProcess) -> None:
    with gateway.http("sk-ratey") as http:
        codes = [
            http.post("/v1/completions", json={"model": "split", "prompt": "x"}) for _ in range(4)
        ]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    refused = codes[-1]
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert "key default/ratey" in error["message"]
    assert "3 requests per minute" in error["message"]
    assert error["code"] == "rate_limit_exceeded"


def test_an_over_budget_key_gets_429(gateway: GatewayProcess) -> None:
    """15 tokens at 1 per token cost 15: the first request spends the budget of 10."""
    with gateway.http("sk-poor") as http:
        first = http.post("/v1/completions", json={"model": "priced", "prompt": "x"})
        second = http.post("/v1/completions", json={"model": "priced", "prompt": "x"})
    assert first.status_code == 200
    assert second.status_code == 429
    error = second.json()["error"]
    assert error["type"] == "insufficient_quota"
    assert "key default/poor" in error["message"]
    assert int(second.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b'{"prompt": "x"}', 400, "model"),
        (b'{"model": "split", "stream": "yes"}', 400, "stream"),
        (b'{"model": "split", "n": 0}', 400, "n"),
        (b'{"model": "nope", "prompt": "x"}', 404, "model"),
        (b'{"model": "elsewhere", "prompt": "x"}', 404, "model"),
    ],
)
def test_bad_requests_get_openai_errors_naming_the_field(
    gateway: GatewayProcess, body: bytes, status: int, param: str | None
) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/completions", content=body, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and error["message"]


def test_v2_errors_are_in_v2_shape(gateway: GatewayProcess) -> None:
    response = httpx.post(
        f"{gateway.url}/v2/models/nope/infer",
        json={"inputs": []},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 404
    assert isinstance(response.json()["error"], str)


def test_access_log_has_one_line_per_request_and_no_prompt(gateway: GatewayProcess) -> None:
    with gateway.http("sk-not-a-key") as http:
        http.post("/v1/completions", json={"model": "split", "prompt": "x"})
    with gateway.http(KEY) as http:
        http.post("/v1/completions", json={"model": "split", "prompt": "very secret prompt"})
    log = Path(gateway.workdir / "access.log")
    deadline = time.monotonic() + 3
    while "very secret" not in log.read_text() and time.monotonic() < deadline:
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        if any(r["service"] == "default/split" for r in lines):
            break
        time.sleep(0.1)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines and all(r["event"] == "request" for r in lines)
    served = [r for r in lines if r["service"] == "default/split" and r["status"] == 200]
    refused = [r for r in lines if r["status"] == 401]
    assert served and refused
    assert served[-1].keys() == refused[-1].keys()  # one shape, whoever wrote the line
    assert refused[-1]["cause"] == "auth" and refused[-1]["key"] is None
    assert "very secret" not in log.read_text()


def test_metrics_count_requests_tokens_and_decisions(gateway: GatewayProcess) -> None:
    with gateway.http(KEY) as http:
        http.post("/v1/completions", json={"model": "split", "prompt": "x"})
    assert gateway.metric("inferplane_gateway_requests_total", service="default/split") >= 1
    assert gateway.metric("inferplane_gateway_tokens_total", direction="output") >= 5
    assert gateway.metric("inferplane_gateway_routing_decisions_total", strategy="round-robin") >= 1
    assert gateway.metric("inferplane_gateway_errors_total", cause="auth") >= 0


def test_a_namespace_quota_is_shared_by_its_keys(gateway: GatewayProcess) -> None:
    body = {"model": "shared", "prompt": "x"}
    codes = []
    for i in (0, 1, 0, 1):
        with gateway.http(f"sk-member-{i}") as http:
            codes.append(http.post("/v1/completions", json=body))
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert "quota team-q/team" in codes[-1].json()["error"]["message"]
