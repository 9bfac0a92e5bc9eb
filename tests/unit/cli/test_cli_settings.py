"""``login``, ``config ...``, ``explain``, ``schema``, ``version`` and the help texts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer.core
import typer.main

import inferplane
from inferplane import clientconfig
from inferplane.cli import main
from tests.unit import fake_resource_api as fake
from tests.unit.cli.conftest import Cli


def logged_out(cli: Cli) -> Cli:
    """The CLI with no server or token in the environment: only the config file counts."""
    cli.env |= {"INFERPLANE_SERVER": None, "INFERPLANE_TOKEN": None}
    return cli


def test_login_checks_the_token_then_saves_a_current_context(cli: Cli, tmp_path: Path) -> None:
    cli = logged_out(cli)
    result = cli("login", fake.SERVER, "--token", fake.TOKEN, "-n", "team-a")
    assert result.exit_code == 0, result.stderr
    assert cli.api.requests[-1].url.path == "/apis/inferplane.dev/v1/clusters"
    config_file = tmp_path / "config"
    assert config_file.stat().st_mode & 0o777 == 0o600
    assert "fake-control-plane" in cli("config", "current-context").stdout
    cli.api.add(fake.deployment("chat", namespace="team-a"))
    assert "chat" in cli("get", "deploy").stdout


def test_login_with_a_bad_token_saves_nothing(cli: Cli, tmp_path: Path) -> None:
    cli = logged_out(cli)
    result = cli("login", fake.SERVER, "--token", "wrong")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: {fake.SERVER} refused the token: missing or unknown bearer token\n"
    )
    assert not (tmp_path / "config").exists()


def test_login_asks_for_the_token_when_left_out(cli: Cli) -> None:
    result = logged_out(cli)("login", fake.SERVER, "--context", "fake", input=f"{fake.TOKEN}\n")
    assert result.exit_code == 0, result.stderr
    assert fake.TOKEN not in result.stdout


def test_contexts_list_switch_and_show(cli: Cli, tmp_path: Path) -> None:
    cli.env["INFERPLANE_CONFIG"] = str(tmp_path / "config")
    contexts = [
        clientconfig.Context("prod", "https://cp.example.com", "t1", "team-a"),
        clientconfig.Context("local", "http://127.0.0.1:8470", "t2"),
    ]
    clientconfig.save(clientconfig.Config(contexts, "prod"), tmp_path / "config")
    lines = cli("config", "get-contexts").stdout.splitlines()
    assert lines[0].split() == ["CURRENT", "NAME", "SERVER", "NAMESPACE"]
    assert lines[1].split() == ["*", "prod", "https://cp.example.com", "team-a"]
    assert cli("config", "use-context", "local").exit_code == 0
    assert cli("config", "current-context").stdout == "local\n"
    missing = cli("config", "use-context", "nope")
    assert (missing.exit_code, missing.stderr) == (
        1,
        "error: no context named 'nope' (known: prod, local)\n",
    )


def test_without_contexts(cli: Cli) -> None:
    assert cli("config", "get-contexts").stderr.startswith("No contexts saved")
    assert cli("config", "current-context").exit_code == 1


def test_an_unknown_context_flag_is_a_plain_error(cli: Cli) -> None:
    result = cli("--context", "nope", "get", "deploy")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: no context named 'nope' (known: none)\n",
    )


def test_explain_schema_and_version(cli: Cli) -> None:
    explained = cli("explain", "deploy.spec.replicas")
    assert explained.exit_code == 0
    assert "replicas" in explained.stdout
    unknown = cli("explain", "deploy.spec.nope")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: ")
    schema = json.loads(cli("schema", "deploy").stdout)
    assert "properties" in schema or "$defs" in schema
    assert cli("version").stdout == f"inferplane {inferplane.__version__}\n"


def commands(group: typer.core.TyperGroup, prefix: str = "") -> list[tuple[str, Any]]:
    """Every command and subcommand, with its full name (``config use-context``)."""
    found: list[tuple[str, Any]] = []
    for name, command in group.commands.items():
        found.append((prefix + name, command))
        if isinstance(command, typer.core.TyperGroup):
            found += commands(command, f"{prefix}{name} ")
    return found


SERVE_COMMANDS = {"control", "up"}
"""Owned by cli/serve.py, which has its own conventions."""


def test_every_command_has_help_an_example_and_documented_parameters() -> None:
    root = typer.main.get_command(main.app)
    assert isinstance(root, typer.core.TyperGroup)
    for name, command in commands(root):
        if name in SERVE_COMMANDS:
            continue
        assert command.help, name
        if not isinstance(command, typer.core.TyperGroup):
            assert "Example" in command.help, name
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"{name} {param.name}"


def test_help_works_for_every_command(cli: Cli) -> None:
    root = typer.main.get_command(main.app)
    assert isinstance(root, typer.core.TyperGroup)
    for name, _ in commands(root):
        result = cli(*name.split(), "--help")
        assert result.exit_code == 0, name
        assert "Usage:" in result.stdout
