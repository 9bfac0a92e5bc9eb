"""``inferplane apikey rotate`` and key expiry against a real control plane and a gateway that
follows it: the old token is refused and the new one accepted by both; an expired key is
refused by both."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from inferplane import client as api_client
from inferplane.cli import main
from tests.integration.fleet import wait_for
from tests.integration.manifests import path
from tests.support.control import ControlProcess
from tests.support.gateway_process import GatewayProcess, StubProcess

pytestmark = pytest.mark.integration
NS = "rotating"


@pytest.fixture
def plane(fresh_control: ControlProcess, tmp_path: Path) -> Iterator[GatewayProcess]:
    """A control plane with an external Service `svc`, and a gateway following it."""
    fresh_control.start()
    stub = StubProcess(tmp_path, "up").start()
    with api_client.Client(fresh_control.url, fresh_control.admin_token, namespace=NS) as client:
        client.create(
            {
                "kind": "Endpoint",
                "metadata": {"name": "ext", "namespace": NS},
                "spec": {"url": stub.url, "external": True},
            }
        )
        client.create(
            {
                "kind": "Service",
                "metadata": {"name": "svc", "namespace": NS},
                "spec": {"routes": [{"endpoint": "ext"}]},
            }
        )
    gw = GatewayProcess(tmp_path, control=fresh_control.url, token=fresh_control.admin_token)
    gw.start()
    yield gw
    gw.stop()
    stub.stop()


def cli(control: ControlProcess, tmp_path: Path, *args: str) -> Result:
    env: dict[str, str | None] = {
        "INFERPLANE_SERVER": control.url,
        "INFERPLANE_TOKEN": control.admin_token,
        "INFERPLANE_CONFIG": str(tmp_path / "config"),
        "INFERPLANE_NAMESPACE": NS,
        "INFERPLANE_CONTEXT": None,
        "COLUMNS": "200",
    }
    return CliRunner().invoke(main.app, list(args), env=env)


def printed_token(result: Result) -> str:
    assert result.exit_code == 0, result.output
    shown = re.findall(r"^  (ipk_\S+)$", result.stdout, re.MULTILINE)
    assert len(shown) == 1, result.stdout
    return str(shown[0])


def control_answers(control: ControlProcess, token: str) -> int:
    with control.http(token) as http:
        return http.get(path("services", NS)).status_code


def gateway_answers(gw: GatewayProcess, token: str) -> int:
    body = {"model": "svc", "prompt": "hi"}
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{gw.url}/v1/completions", json=body, headers=headers).status_code


def both_answer(control: ControlProcess, gw: GatewayProcess, token: str) -> tuple[int, int]:
    return control_answers(control, token), gateway_answers(gw, token)


def test_rotate_refuses_the_old_token_and_accepts_the_new_one(
    fresh_control: ControlProcess, plane: GatewayProcess, tmp_path: Path
) -> None:
    old = printed_token(cli(fresh_control, tmp_path, "apikey", "create", "app", "--rpm", "600"))
    wait_for("the key to work", lambda: both_answer(fresh_control, plane, old) == (200, 200))

    rotated = cli(fresh_control, tmp_path, "apikey", "rotate", "app", "--expires-in", "30d")
    new = printed_token(rotated)
    assert new != old and "apikey/app rotated (namespace rotating)" in rotated.stdout
    assert "This token will not be shown again" in rotated.stdout
    wait_for("the new token to work", lambda: both_answer(fresh_control, plane, new) == (200, 200))
    assert both_answer(fresh_control, plane, old) == (401, 401)

    with api_client.Client(fresh_control.url, fresh_control.admin_token, namespace=NS) as client:
        spec = client.get("ApiKey", "app")["spec"]
    assert spec["tokenPrefix"] == new[:12] and spec["rateLimits"]["requestsPerMinute"] == 600
    expires = datetime.fromisoformat(spec["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    missing = cli(fresh_control, tmp_path, "apikey", "rotate", "nobody")
    assert missing.exit_code == 1 and "no API key 'nobody'" in missing.stderr


def test_json_rotate_hands_a_script_the_token(
    fresh_control: ControlProcess, plane: GatewayProcess, tmp_path: Path
) -> None:
    printed_token(cli(fresh_control, tmp_path, "apikey", "create", "ci"))
    rotated = cli(fresh_control, tmp_path, "apikey", "rotate", "ci", "-o", "json")
    assert rotated.exit_code == 0, rotated.output
    shown: dict[str, Any] = json.loads(rotated.stdout)
    token = shown["status"]["token"]
    assert "tokenHash" not in shown["spec"]
    wait_for("the token to work", lambda: both_answer(fresh_control, plane, token) == (200, 200))


def test_an_expired_key_is_refused_by_the_control_plane_and_the_gateway(
    fresh_control: ControlProcess, plane: GatewayProcess, tmp_path: Path
) -> None:
    soon = printed_token(cli(fresh_control, tmp_path, "apikey", "create", "soon"))
    wait_for("the key to work", lambda: both_answer(fresh_control, plane, soon) == (200, 200))
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with api_client.Client(fresh_control.url, fresh_control.admin_token, namespace=NS) as client:
        client.patch("ApiKey", "soon", {"spec": {"expiresAt": past}})
    wait_for("the expiry to apply", lambda: both_answer(fresh_control, plane, soon) == (401, 401))
    with fresh_control.http(soon) as http:
        assert "has expired" in http.get(path("services", NS)).json()["message"]
    headers = {"Authorization": f"Bearer {soon}"}
    answer = httpx.get(f"{plane.url}/v1/models", headers=headers).json()
    assert "has expired" in answer["error"]["message"]
