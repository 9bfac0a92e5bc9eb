"""A multi-node replica's launch: one gang of `nodes` members, each told its place in
LeaderWorkerSet's variables; only recipes that can run as a gang accept one."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.agent import recipes
from inferplane.agent.runtime import base
from inferplane.api import replicas
from tests.unit.agent.samples import bound_spec


def gang_spec(**engine: Any) -> replicas.ReplicaSpec:
    return replicas.ReplicaSpec.model_validate(
        bound_spec(nodes=[0, 1], resources={"nodes": 2}, engine=engine or {"recipe": "reference"})
    )


def launch(spec: replicas.ReplicaSpec) -> base.Launch:
    return recipes.launch_for(
        "default/big-0", spec, host="0.0.0.0", model_path="demo", devices="", environ={}
    )


def test_a_gang_launch_has_its_members_and_tells_each_its_place() -> None:
    made = launch(gang_spec())
    assert made.nodes == 2
    assert made.member_env(1, leader_host="10.0.0.5", leader_port=8001) == {
        "LWS_LEADER_ADDRESS": "10.0.0.5",
        "LWS_WORKER_INDEX": "1",
        "LWS_GROUP_SIZE": "2",
        "INFERPLANE_GANG_LEADER_URL": "http://10.0.0.5:8001",
    }
    assert (
        made.member_env(0, leader_host="fd00::1", leader_port=80)["INFERPLANE_GANG_LEADER_URL"]
        == "http://[fd00::1]:80"
    )
    with pytest.raises(ValueError):
        made.member_env(2, leader_host="h", leader_port=1)


def test_the_gang_size_survives_the_state_file_and_a_single_node_fingerprint_is_unchanged() -> None:
    made = launch(gang_spec())
    assert base.Launch.from_dict(made.to_dict()) == made
    single = base.Launch(name="a", command=("x", "{port}"))
    assert "nodes" not in single.to_dict(), "engines adopted across the upgrade keep running"


def test_a_recipe_that_cannot_run_as_a_gang_refuses_one() -> None:
    with pytest.raises(recipes.LaunchError, match="single-node replicas; this one needs 2"):
        launch(gang_spec(recipe="vllm"))
    custom = launch(gang_spec(recipe="custom", command=["my-engine", "--port", "{port}"]))
    assert custom.nodes == 2
