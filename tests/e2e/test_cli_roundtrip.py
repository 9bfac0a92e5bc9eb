"""The CLI as a user drives it, against a real control plane process.

apply -> get -> describe -> scale -> diff -> delete, through typer's CliRunner with only the
environment pointing the CLI at the server, as a user's shell would.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from inferplane.cli import main

pytestmark = pytest.mark.integration
_namespaces = itertools.count()

MANIFEST = """\
apiVersion: inferplane.dev/v1
kind: Model
metadata:
  name: tiny
spec:
  versions:
    - name: v1
      source: file:///models/tiny
---
apiVersion: inferplane.dev/v1
kind: Deployment
metadata:
  name: chat
  labels: {app: chat}
spec:
  model: tiny
  replicas: {replicas}
"""


class Shell:
    """Runs ``inferplane ARGS`` in-process with the environment of a logged-in user."""

    def __init__(self, env: dict[str, str | None], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(main.app, list(args), env=self.env)

    def manifest(self, replicas: int) -> str:
        path = self.workdir / f"chat-{replicas}.yaml"
        path.write_text(MANIFEST.replace("{replicas}", str(replicas)))
        return str(path)


@pytest.fixture
def shell(request: pytest.FixtureRequest, tmp_path: Path) -> Shell:
    try:
        plane: Any = request.getfixturevalue("control_plane")
    except pytest.FixtureLookupError:
        pytest.skip("needs the control_plane fixture (tests/conftest.py)")
    env: dict[str, str | None] = {
        "INFERPLANE_SERVER": plane.url,
        "INFERPLANE_TOKEN": plane.admin_token,
        "INFERPLANE_CONFIG": str(tmp_path / "config"),
        "INFERPLANE_NAMESPACE": f"cli-{next(_namespaces)}",
        "INFERPLANE_CONTEXT": None,
        "COLUMNS": "200",
    }
    return Shell(env, tmp_path)


def test_apply_get_describe_scale_diff_delete(shell: Shell) -> None:
    manifest = shell.manifest(replicas=1)
    created = shell("apply", "-f", manifest)
    assert created.exit_code == 0, created.stderr
    assert created.stdout == "model/tiny created\ndeployment/chat created\n"
    again = shell("apply", "-f", manifest)
    assert again.stdout == "model/tiny unchanged\ndeployment/chat unchanged\n"

    table = shell("get", "deployments").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "READY"]
    assert table[1].split()[0] == "chat"
    live = yaml.safe_load(shell("get", "deploy", "chat", "-o", "yaml").stdout)
    assert (live["spec"]["replicas"], live["metadata"]["labels"]) == (1, {"app": "chat"})

    described = shell("describe", "deploy", "chat")
    assert described.exit_code == 0, described.stderr
    assert "Name:               chat" in described.stdout

    assert shell("scale", "deploy", "chat", "--replicas", "2").stdout == "deployment/chat scaled\n"
    scaled = json.loads(shell("get", "deploy", "chat", "-o", "json").stdout)
    assert scaled["spec"]["replicas"] == 2
    diff = shell("diff", "-f", shell.manifest(replicas=3))
    assert diff.exit_code == 1, diff.stderr
    assert "+  replicas: 3" in diff.stdout

    assert shell("delete", "deploy", "chat").stdout == "deployment/chat deleted\n"
    gone = shell("get", "deploy", "chat")
    assert gone.exit_code == 1
    assert gone.stderr.startswith("error: ")


def test_an_invalid_document_is_reported_with_its_place_and_field(shell: Shell) -> None:
    manifest = shell.manifest(replicas=-1)
    result = shell("apply", "-f", manifest)
    assert result.exit_code == 1
    assert result.stdout == "model/tiny created\n"
    assert result.stderr.startswith(f"error: {manifest}[1]: spec.replicas: ")


def test_a_wrong_token_is_a_plain_error(shell: Shell) -> None:
    shell.env["INFERPLANE_TOKEN"] = "not-a-token"
    result = shell("get", "deploy")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
