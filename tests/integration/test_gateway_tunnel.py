"""A plane edge's tunnel to the global gateway, with real gateway processes and stub
engines on loopback: the edge dials out, the global gateway carries its requests to the
plane's engines through the tunnel (streams included, intact), the edge refuses any target
that is not an engine of its own plane, and a key that names no cluster opens no tunnel.

On one host the engines are reachable directly too, so the tunnel's use is read from the
global gateway's metrics; the NAT'd plane, whose engines it cannot dial, is
tests/e2e/test_tunnel_nat.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.support.control import free_port
from tests.support.gateway_process import (
    FLEET_NAMESPACE,
    GatewayProcess,
    StubProcess,
    api_key,
    endpoint,
    service,
)

pytestmark = pytest.mark.integration

KEY = "sk-tunnel-client"
EDGE_TOKEN = "sk-tunnel-edge-of-plane-x"
STRAY_TOKEN = "sk-tunnel-gateway-without-a-plane"


def _edge_key(name: str, token: str, **spec: Any) -> dict[str, Any]:
    key = api_key(name, token, role="gateway", **spec)
    key["metadata"]["namespace"] = FLEET_NAMESPACE
    return key


def _objects(stubs: dict[str, StubProcess]) -> list[dict[str, Any]]:
    return [
        service("chat", [{"deployment": "chat"}], strategy="round-robin"),
        endpoint("chat-0", stubs["plane"].url, "chat", cluster="plane-x"),
        service("other", [{"deployment": "other"}]),
        endpoint("other-0", stubs["outside"].url, "other", cluster="plane-x"),
        service("yonder", [{"deployment": "yonder"}]),
        endpoint("yonder-0", stubs["outside"].url, "yonder", cluster="plane-y"),
        api_key("main", KEY),
        _edge_key("edge-x", EDGE_TOKEN, cluster="plane-x"),
        _edge_key("stray", STRAY_TOKEN),
    ]


@pytest.fixture(scope="module")
def planes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("tunnel")
    stubs = {
        "plane": StubProcess(work, "plane", extra=["--chunks", "50"]).start(),
        "outside": StubProcess(work, "outside").start(),
    }
    objects = _objects(stubs)
    tunnel_port = free_port()
    global_gw = GatewayProcess(
        work / "global", objects, extra=["--tunnel-port", str(tunnel_port), "--no-access-log"]
    )
    (work / "global").mkdir()
    global_gw.start()
    # The edge's own table knows chat-0 only: other-0 is not an engine of its plane.
    plane_objects = [o for o in objects if o["metadata"]["name"] != "other-0"]
    edge = GatewayProcess(
        work / "edge",
        plane_objects,
        extra=["--plane", "plane-x", "--tunnel-to", f"ws://127.0.0.1:{tunnel_port}",
               "--token", EDGE_TOKEN, "--no-access-log"],
    )  # fmt: skip
    (work / "edge").mkdir()
    edge.start()
    _wait_for_tunnel(global_gw)
    yield {"global": global_gw, "edge": edge, "stubs": stubs, "tunnel_port": tunnel_port}
    edge.stop()
    global_gw.stop()
    for stub in stubs.values():
        stub.stop()


def _wait_for_tunnel(gateway: GatewayProcess, clusters: float = 1.0) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if gateway.metric("inferplane_gateway_tunnels", cluster="plane-x") >= clusters:
            return
        time.sleep(0.1)
    raise AssertionError(f"no tunnel: {gateway.log_path.read_text()[-2000:]}")


def _streams(gateway: GatewayProcess) -> float:
    return gateway.metric("inferplane_gateway_tunnel_streams_total", cluster="plane-x")


def test_a_request_to_the_planes_engine_goes_through_its_tunnel(planes: dict[str, Any]) -> None:
    gateway = planes["global"]
    before = _streams(gateway)
    with OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0) as client:
        answer = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.choices[0].message.content
    assert _streams(gateway) >= before + 1
    assert planes["stubs"]["plane"].stats()["requests"] >= 1


def test_a_stream_through_the_tunnel_arrives_whole(planes: dict[str, Any]) -> None:
    gateway = planes["global"]
    messages: list[Any] = [{"role": "user", "content": "count"}]

    def text(base_url: str) -> str:
        with OpenAI(base_url=base_url, api_key=KEY, max_retries=0) as of:
            stream = of.chat.completions.create(model="chat", messages=messages, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    through = text(f"{gateway.url}/v1")
    assert through == text(f"{planes['stubs']['plane'].url}/v1") != ""


def test_the_edge_refuses_a_target_that_is_not_its_planes_engine(planes: dict[str, Any]) -> None:
    """The global gateway asks the edge for other-0, which the edge does not route to: it
    refuses, and the request fails rather than reaching into the plane's network."""
    gateway = planes["global"]
    with gateway.http(KEY) as http:
        reply = http.post(
            "/v1/chat/completions",
            json={"model": "other", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert reply.status_code in (502, 503), reply.text
    assert planes["stubs"]["outside"].stats()["requests"] == 0
    assert "tunnel target refused" in planes["edge"].log_path.read_text()


def test_a_plane_gateway_routes_to_its_own_planes_engines_only(planes: dict[str, Any]) -> None:
    """The edge holds yonder-0 in its objects, but it runs on plane-y: not routed there (the
    edge holds the request, as for a deployment with no replica yet, rather than send it out
    of its plane)."""
    body = {"model": "yonder", "messages": [{"role": "user", "content": "hi"}]}
    with planes["edge"].http(KEY) as http:
        served = http.post("/v1/chat/completions", json={**body, "model": "chat"})
        try:
            refused = http.post("/v1/chat/completions", json=body, timeout=2).status_code
        except httpx.TimeoutException:
            refused = 0  # held
    assert served.status_code == 200, served.text
    assert refused != 200
    assert planes["stubs"]["outside"].stats()["requests"] == 0
    with planes["global"].http(KEY) as http:  # the global gateway routes to every plane
        assert http.post("/v1/chat/completions", json=body).status_code == 200


def test_a_gateway_key_that_names_no_cluster_opens_no_tunnel(planes: dict[str, Any]) -> None:
    port = planes["tunnel_port"]
    for token in (STRAY_TOKEN, KEY, "sk-nobody"):
        answer = httpx.get(
            f"http://127.0.0.1:{port}/tunnel",
            headers={"Authorization": f"Bearer {token}", "Connection": "Upgrade",
                     "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
        )  # fmt: skip
        assert answer.status_code == 401, (token, answer.text)


def test_the_edge_dials_again_after_the_global_gateway_restarts(
    planes: dict[str, Any], tmp_path: Path
) -> None:
    gateway = planes["global"]
    gateway.stop()
    gateway.start()
    _wait_for_tunnel(gateway)
    before = _streams(gateway)
    with OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0) as client:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    assert _streams(gateway) == before + 1
