"""``inferplane schedule --dry-run`` against a real control plane, as a user runs it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from inferplane import client as api_client
from inferplane.cli import main

pytestmark = pytest.mark.integration
_runs = itertools.count()

FLEET = """\
apiVersion: inferplane.dev/v1
kind: Cluster
metadata: {name: sched-eu-{n}, labels: {region: eu-west, suite: sched-{n}}}
spec: {heartbeatGraceSeconds: 3600}
---
apiVersion: inferplane.dev/v1
kind: Cluster
metadata: {name: sched-us-{n}, labels: {region: us-east, suite: sched-{n}}}
spec: {heartbeatGraceSeconds: 3600}
---
apiVersion: inferplane.dev/v1
kind: Pool
metadata: {name: h100-{n}}
spec:
  cluster: sched-eu-{n}
  nodeCount: 1
  pricePerHour: 98.32
  devicesPerNode:
    - name: gpu
      count: 8
      driver: gpu.nvidia.com
      attributes: {productName: H100}
      capacity: {memory: 80Gi}
---
apiVersion: inferplane.dev/v1
kind: Pool
metadata: {name: l4-{n}}
spec:
  cluster: sched-us-{n}
  nodeCount: 2
  devicesPerNode:
    - {name: gpu, count: 4, driver: gpu.nvidia.com, attributes: {productName: L4}}
"""

DEPLOYMENT = """\
apiVersion: inferplane.dev/v1
kind: Deployment
metadata: {name: chat}
spec:
  model: llama
  replicas: 3
  resources:
    devices:
      - name: h100
        count: 4
        selectors:
          - device.attributes["gpu.nvidia.com"].productName == "H100"
          - device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) >= 0
  placement:
    clusterSelector: {matchLabels: {suite: sched-{n}}}
"""


@pytest.fixture
def fleet(control_plane: Any, tmp_path: Path) -> tuple[dict[str, str | None], str, int]:
    """Two Ready clusters (one H100 pool, one L4 pool) of this test's own."""
    n = next(_runs)
    env: dict[str, str | None] = {
        "INFERPLANE_SERVER": control_plane.url,
        "INFERPLANE_TOKEN": control_plane.admin_token,
        "INFERPLANE_CONFIG": str(tmp_path / "config"),
        "INFERPLANE_NAMESPACE": f"sched-{n}",
        "INFERPLANE_CONTEXT": None,
        "COLUMNS": "250",
    }
    with api_client.Client(control_plane.url, control_plane.admin_token) as client:
        for doc in yaml.safe_load_all(FLEET.replace("{n}", str(n))):
            created = client.create(doc)
            if doc["kind"] == "Cluster":
                # As an agent's heartbeat would (the cluster controller runs here too).
                beat = datetime.now(UTC).isoformat()
                status = {"phase": "Ready", "lastHeartbeatTime": beat}
                client.replace_status({**created, "status": status})
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(DEPLOYMENT.replace("{n}", str(n)))
    return env, str(manifest), n


def schedule(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(main.app, ["schedule", "--dry-run", *args], env=env)


def test_each_replica_lands_on_free_h100s_and_the_rest_says_why(
    fleet: tuple[dict[str, str | None], str, int],
) -> None:
    env, manifest, n = fleet
    result = schedule(env, "-f", manifest)
    assert result.exit_code == 1, result.output  # the third replica fits nowhere
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["REPLICA", "CLUSTER", "POOL", "NODES", "DEVICES", "WHY"]
    rows = [line.split(None, 5) for line in lines[1:4]]
    assert rows[0][:5] == [f"sched-{n}/chat-0", f"sched-eu-{n}", f"h100-{n}", "0", "gpu[0,1,2,3]"]
    assert rows[0][5] == "binpack: leaves 4 of 8 gpu free on node 0"
    assert rows[1][:5] == [f"sched-{n}/chat-1", f"sched-eu-{n}", f"h100-{n}", "0", "gpu[4,5,6,7]"]
    assert rows[2][1:] == ["-", "-", "-", "-", "unschedulable (reasons below)"]
    total = _clusters(env)
    head, _, listed = result.stdout.partition(f"sched-{n}/chat-2: ")[2].partition(": ")
    assert head == f"0/{total} clusters available"
    reasons = dict(r.split(" ", 1)[::-1] for r in listed.splitlines()[0].split(", "))
    assert reasons.pop("had no pool with 4× h100 free") == "1"
    assert reasons.pop("had no pool with devices matching h100") == "1"
    assert reasons in ({}, {"did not match the cluster selector": str(total - 2)})


def test_nothing_is_written(fleet: tuple[dict[str, str | None], str, int]) -> None:
    env, manifest, n = fleet
    assert schedule(env, "-f", manifest).exit_code == 1
    with api_client.Client(str(env["INFERPLANE_SERVER"]), env["INFERPLANE_TOKEN"]) as client:
        assert client.get("Pool", f"h100-{n}")["status"].get("nodes", []) == []
        assert client.list("Deployment", namespace=f"sched-{n}").items == []


def test_a_bad_selector_is_refused_before_scheduling(
    fleet: tuple[dict[str, str | None], str, int], tmp_path: Path
) -> None:
    env, manifest, _ = fleet
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(manifest).read_text().replace('== "H100"', "=="))
    result = schedule(env, "-f", str(bad))
    assert result.exit_code == 1
    assert "spec.resources.devices[0].selectors[0]: invalid CEL: syntax error" in result.stderr


def test_without_dry_run_it_refuses(fleet: tuple[dict[str, str | None], str, int]) -> None:
    env, manifest, _ = fleet
    result = CliRunner().invoke(main.app, ["schedule", "-f", manifest], env=env)
    assert result.exit_code == 1
    assert "only --dry-run is supported" in result.stderr


def _clusters(env: dict[str, str | None]) -> int:
    with api_client.Client(str(env["INFERPLANE_SERVER"]), env["INFERPLANE_TOKEN"]) as client:
        return len(client.list("Cluster").items)
