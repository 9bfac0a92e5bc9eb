"""A plane behind NAT serves inference through its edge's tunnel (issue 14, item 5).

The plane runs in a network namespace of its own (tests/support/netns.py): its agent starts
a real reference engine there, on the namespace's loopback, which the global gateway on the
host cannot dial. The plane's edge (`inferplane gateway --plane ... --tunnel-to ...`) dials
out to the global gateway; a client of the global gateway, with the official `openai`
client, is answered by that engine through the tunnel. Needs root for the namespace, and is
skipped, saying so, where it cannot make one.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane import client as api_client
from tests.integration import manifests
from tests.integration.fleet import wait_for
from tests.support import netns
from tests.support.control import ControlProcess, free_port
from tests.support.gateway_process import GatewayProcess
from tests.support.tiny_model import make_tiny_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PLANE = "nat-plane"
NAMESPACE = "team-nat"
WHY_NOT = netns.available()


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ControlProcess]:
    process = ControlProcess(tmp_path / "control", extra_args=["--host", "0.0.0.0"])
    process.start()
    yield process
    process.stop()


def _inside(
    ns: netns.Netns, argv: list[str], log: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    with log.open("ab") as out:
        processes.append(subprocess.Popen(ns.command(argv), stdout=out, stderr=subprocess.STDOUT))


def _keys(control: ControlProcess) -> tuple[str, str, str]:
    """The plane's join key, its edge's gateway key, and a tenant's key."""
    join = manifests.apikey("join-nat", "inferplane-system", "join")
    join["spec"]["cluster"] = PLANE
    edge = manifests.apikey("edge-nat", "inferplane-system", "gateway")
    edge["spec"]["cluster"] = PLANE
    tenant = manifests.apikey("user", NAMESPACE, "viewer")
    with api_client.Client(control.url, control.admin_token) as admin:
        made = [admin.create(key)["status"]["token"] for key in (join, edge, tenant)]
    return made[0], made[1], made[2]


def _deploy(control: ControlProcess, model: Path) -> None:
    objects: list[dict[str, Any]] = [
        {"apiVersion": "inferplane.dev/v1", "kind": "Model",
         "metadata": {"name": "tiny", "namespace": NAMESPACE},
         "spec": {"versions": [{"name": "v1", "source": f"file://{model}"}]}},
        manifests.deployment("chat", NAMESPACE, engine={
            "recipe": "reference", "args": ["--kv-cache-memory", "8MiB"]}),
        {"apiVersion": "inferplane.dev/v1", "kind": "Service",
         "metadata": {"name": "chat", "namespace": NAMESPACE},
         "spec": {"routes": [{"deployment": "chat"}]}},
    ]  # fmt: skip
    with api_client.Client(control.url, control.admin_token, namespace=NAMESPACE) as admin:
        for obj in objects:
            admin.create(obj)


def _ready_endpoint(control: ControlProcess) -> dict[str, Any] | None:
    with api_client.Client(control.url, control.admin_token, namespace=NAMESPACE) as admin:
        found = admin.list("Endpoint").items
    return next((e for e in found if (e.get("status") or {}).get("ready")), None)


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no network namespace here: {WHY_NOT}")
def test_a_natted_plane_serves_through_its_tunnel(control: ControlProcess, tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny")
    join_token, edge_token, tenant_token = _keys(control)
    tunnel_port = free_port()
    gateway = GatewayProcess(
        tmp_path / "global", control=control.url, token=control.admin_token,
        extra=["--host", "0.0.0.0", "--tunnel-port", str(tunnel_port), "--no-access-log"],
    )  # fmt: skip
    (tmp_path / "global").mkdir()
    processes: list[subprocess.Popen[bytes]] = []
    with netns.plane_namespace() as ns:
        inside_control = f"http://{ns.host_address}:{control.port}"
        try:
            gateway.start(wait_ready=False)
            python = [sys.executable, "-m", "inferplane"]
            _inside(ns, [*python, "agent", "--control", inside_control, "--join-token",
                         join_token, "--cluster", PLANE, "--data-dir", str(tmp_path / "agent"),
                         "--heartbeat", "1", "--load-interval", "1"],
                    tmp_path / "agent.log", processes)  # fmt: skip
            _inside(ns, [*python, "gateway", "--port", str(free_port()), "--plane", PLANE,
                         "--tunnel-to", f"ws://{ns.host_address}:{tunnel_port}",
                         "--control", inside_control, "--token", edge_token,
                         "--state-dir", str(tmp_path / "edge"), "--no-access-log"],
                    tmp_path / "edge.log", processes)  # fmt: skip
            _deploy(control, model)
            endpoint = wait_for("a ready Endpoint", lambda: _ready_endpoint(control), timeout=120)
            wait_for(
                "the edge's tunnel",
                lambda: gateway.metric("inferplane_gateway_tunnels", cluster=PLANE) >= 1,
            )
            url = endpoint["spec"]["url"]
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{url}/health", timeout=2)  # the host cannot reach the engine
            with openai.OpenAI(
                base_url=f"{gateway.url}/v1", api_key=tenant_token, max_retries=2
            ) as client:
                answer = client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "hello"}], max_tokens=4
                )
            assert answer.choices[0].message.content is not None
            assert gateway.metric("inferplane_gateway_tunnel_streams_total", cluster=PLANE) >= 1
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            gateway.stop()
