"""`inferplane agent`: its flags are checked before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from inferplane.cli import agent
from tests.unit.cli.conftest import Cli


def test_labels_parse_into_valid_kubernetes_labels() -> None:
    assert agent.parse_labels("region=eu-west, tier=prod,") == {"region": "eu-west", "tier": "prod"}
    assert agent.parse_labels("") == {}
    with pytest.raises(typer.BadParameter, match="not KEY=VALUE"):
        agent.parse_labels("region")
    with pytest.raises(typer.BadParameter):
        agent.parse_labels("bad key=x")


def test_a_bad_cluster_name_is_refused(cli: Cli) -> None:
    result = cli("agent", "--cluster", "Bad_Name")
    assert result.exit_code == 2
    assert "--cluster" in result.output


def test_a_remote_control_plane_needs_a_token(cli: Cli) -> None:
    cli.env["INFERPLANE_TOKEN"] = None
    result = cli("agent", "--cluster", "eu-1", "--control", "https://cp.example.com")
    assert result.exit_code == 1
    assert "--token" in result.output


def test_a_bad_pool_file_stops_the_agent_before_it_starts(cli: Cli, tmp_path: Path) -> None:
    pools = tmp_path / "pools.yaml"
    pools.write_text("pools:\n  - {name: a, nodeCount: -1}\n")
    result = cli("agent", "--cluster", "eu-1", "--pool-file", str(pools))
    assert result.exit_code == 1
    assert "pools[0]: nodeCount" in result.output
