"""The gateway following a real control plane: keys revoked within seconds, scale from zero,
and serving on — across its own restart — while the control plane is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferplane import client as api_client
from inferplane.api import wellknown
from tests.integration.fake_agent import gpu_pool
from tests.integration.fleet import Load, fleet, wait_for, workload
from tests.support.control import ControlProcess
from tests.support.gateway_process import GatewayProcess, StubProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[StubProcess]:
    process = StubProcess(tmp_path, "up").start()
    yield process
    process.stop()


def _answers(gw: GatewayProcess, token: str, model: str, *, timeout: float = 10) -> int:
    try:
        return httpx.post(
            f"{gw.url}/v1/completions",
            json={"model": model, "prompt": "x"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        ).status_code
    except httpx.HTTPError:
        return 0


def _external_service(client: api_client.Client, ns: str, url: str) -> None:
    client.create(
        {
            "kind": "Endpoint",
            "metadata": {"name": "ext", "namespace": ns},
            "spec": {"url": url, "external": True},
        }
    )
    client.create(
        {
            "kind": "Service",
            "metadata": {"name": "svc", "namespace": ns},
            "spec": {"routes": [{"endpoint": "ext"}]},
        }
    )


def _new_key(client: api_client.Client, ns: str, name: str) -> str:
    created = client.create({"kind": "ApiKey", "metadata": {"name": name, "namespace": ns}})
    token: str = created["status"]["token"]
    return token


def test_revoked_keys_stop_working_and_a_restart_serves_with_the_control_plane_down(
    fresh_control: ControlProcess, stub: StubProcess, tmp_path: Path
) -> None:
    fresh_control.start()
    ns = "team"
    with api_client.Client(fresh_control.url, fresh_control.admin_token, namespace=ns) as client:
        _external_service(client, ns, stub.url)
        keep, revoke = _new_key(client, ns, "keep"), _new_key(client, ns, "revoke")
        gw = GatewayProcess(
            tmp_path, control=fresh_control.url, token=fresh_control.admin_token
        ).start()
        try:
            wait_for(
                "the gateway to learn the service",
                lambda: _answers(gw, keep, "svc") == 200 or None,
                timeout=10,
            )
            assert _answers(gw, revoke, "svc") == 200
            client.delete("ApiKey", "revoke", namespace=ns)
            started = time.monotonic()
            wait_for(
                "the revoked key to be refused",
                lambda: _answers(gw, revoke, "svc") == 401 or None,
                timeout=5,
            )
            assert time.monotonic() - started < 5
            assert _answers(gw, keep, "svc") == 200
            status = wait_for(
                "usage to reach the key's status",
                lambda: _status_once_used(client, "keep", 30),
                timeout=15,
            )
            assert status["lastUsedTime"] and status["periodStart"]

            saved = gw.state_dir / "routing-table.json"
            wait_for("the table to be saved", lambda: saved.exists() or None, timeout=5)
            fresh_control.stop()
            assert _answers(gw, keep, "svc") == 200, "serves with the control plane down"
            gw.stop()
            gw.start()  # ready from the table it saved
            assert _answers(gw, keep, "svc") == 200, "serves after a restart, control down"
            assert _answers(gw, revoke, "svc") == 401
        finally:
            gw.stop()


def test_a_request_for_a_deployment_at_zero_is_held_until_a_replica_is_ready(
    control: ControlProcess, namespace: str, stub: StubProcess, tmp_path: Path
) -> None:
    pools = [gpu_pool("gpus")]
    with (
        fleet(control, namespace, {"cluster": "a", "pools": pools}) as agents,
        api_client.Client(control.url, control.admin_token, namespace=namespace) as client,
    ):
        agents[0].url_of = lambda replica: stub.url  # type: ignore[method-assign]
        client.create(workload(namespace, "cold", replicas=0))
        client.create(
            {
                "kind": "Service",
                "metadata": {"name": "cold", "namespace": namespace},
                "spec": {
                    "routes": [{"deployment": "cold"}],
                    "timeouts": {"scaleFromZeroSeconds": 60},
                },
            }
        )
        token = _new_key(client, namespace, "k")
        gw = GatewayProcess(tmp_path, control=control.url, token=control.admin_token).start()
        try:
            wait_for(
                "the service to be known",
                lambda: (
                    (
                        gw.metric("inferplane_gateway_routing_table_age_seconds") >= 0
                        and _held_or_answer(gw, token)
                    )
                    or None
                ),
                timeout=10,
            )
            result: dict[str, Any] = {}
            thread = threading.Thread(
                target=lambda: result.update(status=_answers(gw, token, "cold"))
            )
            thread.start()
            wait_for(
                "the request to be held",
                lambda: (
                    gw.metric("inferplane_gateway_held_requests", service=f"{namespace}/cold") == 1
                    or None
                ),
            )
            annotations = wait_for(
                "demand to be signalled",
                lambda: (
                    (client.get("Deployment", "cold")["metadata"].get("annotations") or {}).get(
                        wellknown.DEMAND_AT_ANNOTATION
                    )
                    and client.get("Deployment", "cold")["metadata"]["annotations"]
                ),
            )
            assert annotations[wellknown.DEMAND_WAITING_ANNOTATION] == "1"
            assert thread.is_alive(), "still held: nothing is ready"
            client.set_scale("Deployment", "cold", 1)  # the replica "started by hand"
            thread.join(timeout=30)
            assert result == {"status": 200}
            assert gw.metric("inferplane_gateway_held_requests") == 0
        finally:
            gw.stop()


def _held_or_answer(gw: GatewayProcess, token: str, model: str = "cold") -> bool:
    """The gateway knows the key (a 401 would mean the table is not in yet)."""
    response = httpx.get(f"{gw.url}/v1/models", headers={"Authorization": f"Bearer {token}"})
    return response.status_code == 200 and any(m["id"] == model for m in response.json()["data"])


def _status_once_used(client: api_client.Client, key: str, tokens: int) -> dict[str, Any] | None:
    status: dict[str, Any] = client.get("ApiKey", key)["status"]
    return status if status.get("tokensUsed", 0) >= tokens else None


def test_an_autoscaled_deployment_at_zero_answers_its_first_request_and_goes_back_to_zero(
    control: ControlProcess, namespace: str, stub: StubProcess, tmp_path: Path
) -> None:
    """Issue 13, item 5: no manual step. The held request's demand makes the autoscaler start
    one replica at once; once it is idle for scaleToZeroAfterSeconds it goes back to zero."""
    autoscaling = {
        "minReplicas": 0,
        "maxReplicas": 2,
        "scaleToZeroAfterSeconds": 4,
        "stableWindowSeconds": 4,
        "panicWindowSeconds": 2,
    }
    with (
        fleet(control, namespace, {"cluster": "a", "pools": [gpu_pool("gpus")]}) as agents,
        api_client.Client(control.url, control.admin_token, namespace=namespace) as client,
    ):
        agents[0].url_of = lambda replica: stub.url  # type: ignore[method-assign]
        client.create(workload(namespace, "auto", replicas=0, autoscaling=autoscaling))
        client.create(
            {
                "kind": "Service",
                "metadata": {"name": "auto", "namespace": namespace},
                "spec": {"routes": [{"deployment": "auto"}]},
            }
        )
        token = _new_key(client, namespace, "k")
        gw = GatewayProcess(tmp_path, control=control.url, token=control.admin_token).start()
        load = Load(client, agents[0].cluster, namespace, "auto")  # idle engines report zero
        try:
            wait_for("the service to be known", lambda: _held_or_answer(gw, token, "auto") or None)
            with load.running():
                assert _answers(gw, token, "auto", timeout=60) == 200, (
                    "held, then answered: no manual step"
                )
                scaled = client.get("Deployment", "auto")["status"]["autoscaling"]
                assert "held" in scaled["lastScaleReason"], scaled
                wait_for(
                    "scaled back to zero",
                    lambda: client.get("Deployment", "auto")["spec"]["replicas"] == 0,
                    timeout=60,
                )
            reason = client.get("Deployment", "auto")["status"]["autoscaling"]["lastScaleReason"]
            assert "1 → 0" in reason and "no requests" in reason, reason
        finally:
            gw.stop()
