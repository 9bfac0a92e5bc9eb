"""``inferplane apikey`` against a real control plane: the token it prints once is a working
bearer token, ``list`` shows the key without its hash, and after ``revoke`` the token gets 401."""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from inferplane.cli import main
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration
_namespaces = itertools.count()
REVOKE_SECONDS = 5.0


class Shell:
    """Runs ``inferplane ARGS`` in-process with the environment of a logged-in fleet admin."""

    def __init__(self, plane: ControlProcess, tmp_path: Path) -> None:
        self.plane = plane
        self.namespace = f"keys-{next(_namespaces)}"
        self.env: dict[str, str | None] = {
            "INFERPLANE_SERVER": plane.url,
            "INFERPLANE_TOKEN": plane.admin_token,
            "INFERPLANE_CONFIG": str(tmp_path / "config"),
            "INFERPLANE_NAMESPACE": self.namespace,
            "INFERPLANE_CONTEXT": None,
            "COLUMNS": "200",
        }

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(main.app, list(args), env=self.env)

    def status_with(self, token: str) -> int:
        """What the resource API answers the token for a read in the shell's namespace."""
        path = f"/apis/inferplane.dev/v1/namespaces/{self.namespace}/deployments"
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(self.plane.url + path, headers=headers, timeout=5).status_code


@pytest.fixture
def shell(control_plane: ControlProcess, tmp_path: Path) -> Shell:
    return Shell(control_plane, tmp_path)


def test_create_use_list_revoke(shell: Shell) -> None:
    created = shell("apikey", "create", "ci-bot", "--rpm", "60", "--budget-cost", "5")
    assert created.exit_code == 0, created.output
    shown = re.findall(r"^  (ipk_\S+)$", created.stdout, re.MULTILINE)
    assert len(shown) == 1, created.stdout
    token = shown[0]
    assert "This token will not be shown again" in created.stdout
    assert shell.status_with(token) == 200

    listed = shell("apikey", "list").stdout.splitlines()
    assert listed[1].split()[:6] == ["ci-bot", "viewer", token[:12], "60", "unlimited", "$5.00/day"]
    as_json = json.loads(shell("apikey", "list", "-o", "json").stdout)
    spec = as_json["items"][0]["spec"]
    assert "tokenHash" not in spec and token not in json.dumps(as_json)

    revoked = shell("apikey", "revoke", "ci-bot")
    assert revoked.exit_code == 0, revoked.output
    deadline = time.monotonic() + REVOKE_SECONDS
    while shell.status_with(token) != 401 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shell.status_with(token) == 401
    again = shell("apikey", "revoke", "ci-bot")
    assert again.exit_code == 1 and again.stderr.startswith("error: no API key 'ci-bot'")


def test_json_create_hands_a_script_the_token(shell: Shell) -> None:
    created = shell("apikey", "create", "deployer", "--role", "deployer", "-o", "json")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["spec"]["role"] == "deployer" and "tokenHash" not in key["spec"]
    assert shell.status_with(key["status"]["token"]) == 200


def test_a_bad_flag_is_refused_without_a_trace(shell: Shell) -> None:
    result = shell("apikey", "create", "x", "--expires-in", "next-week")
    assert result.exit_code == 2
    assert "'next-week' is not a duration" in result.output
    assert shell("apikey", "list").stderr == f"No API keys found in {shell.namespace} namespace.\n"
