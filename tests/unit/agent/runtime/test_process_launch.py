"""What the process runtime says a replica needs to run on this machine: one node, a local
model, and its devices in CUDA_VISIBLE_DEVICES by the IDs the agent discovered; and the agent
loop that carries its refusal into the replica's status."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from inferplane import client as api_client
from inferplane.agent import agent, recipes, sources
from inferplane.agent.runtime import base, process
from inferplane.api import replicas
from tests.unit import fake_resource_api as fake
from tests.unit.agent.samples import bound_spec

IDS = {"gpu": ["GPU-a", "GPU-b", "GPU-c", "GPU-d"]}


def replica(device_ids: dict[str, list[str]] | None = None, **fields: Any) -> base.Replica:
    spec = replicas.ReplicaSpec.model_validate(bound_spec(**fields))
    ids = IDS if device_ids is None else device_ids
    return base.Replica("default/chat-0", spec, device_ids=ids)


def runtime(tmp_path: Path, **settings: Any) -> process.ProcessRuntime:
    return process.ProcessRuntime(process.ProcessSettings(tmp_path, **settings), environ={})


def test_the_devices_are_the_leader_nodes_by_id(tmp_path: Path) -> None:
    launch = runtime(tmp_path).launch_for(replica())
    assert launch.env["CUDA_VISIBLE_DEVICES"] == "GPU-a,GPU-c"  # node 1's devices, by id
    assert launch.name == "default/chat-0"


def test_devices_without_a_discovered_id_are_named_by_index(tmp_path: Path) -> None:
    made = runtime(tmp_path).launch_for(replica({"gpu": ["GPU-a"]}))
    assert made.env["CUDA_VISIBLE_DEVICES"] == "GPU-a,2"
    unknown = runtime(tmp_path).launch_for(replica({}))
    assert unknown.env["CUDA_VISIBLE_DEVICES"] == "0,2"


def test_a_replica_without_devices_sees_none(tmp_path: Path) -> None:
    launch = runtime(tmp_path).launch_for(replica(nodes=[0], devices=[]))
    assert launch.env["CUDA_VISIBLE_DEVICES"] == ""


def test_the_engine_listens_on_the_runtimes_host(tmp_path: Path) -> None:
    launch = runtime(tmp_path, host="10.0.0.5").launch_for(replica())
    assert launch.command == (
        sys.executable, "-m", "inferplane", "engine", "--model", "demo",
        "--host", "10.0.0.5", "--port", "{port}",
    )  # fmt: skip
    assert launch.host == "10.0.0.5"


def test_a_recipe_program_comes_from_the_agents_environment(tmp_path: Path) -> None:
    environ = {"INFERPLANE_ENGINE_PYTHON": "/venv/bin/python"}
    settings = process.ProcessSettings(tmp_path)
    launch = process.ProcessRuntime(settings, environ=environ).launch_for(replica())
    assert launch.command[0] == "/venv/bin/python"


def test_a_multi_node_replica_is_refused(tmp_path: Path) -> None:
    gang = replica(resources={"nodes": 2})
    with pytest.raises(recipes.LaunchError) as refused:
        runtime(tmp_path).launch_for(gang)
    assert str(refused.value) == (
        "the process runtime runs single-node replicas; this one needs 2 nodes"
    )


def test_a_remote_model_is_refused(tmp_path: Path) -> None:
    remote = replica(model={"name": "m", "version": "v1", "source": "hf://org/m"})
    with pytest.raises(sources.SourceError, match="hf:// model sources are not fetched"):
        runtime(tmp_path).launch_for(remote)


def test_the_agent_fails_a_multi_node_replica_saying_why(tmp_path: Path) -> None:
    api = fake.FakeResourceApi()
    settings = agent.AgentSettings(control=fake.SERVER, token=fake.TOKEN, cluster="eu-1",
                                   data_dir=tmp_path)  # fmt: skip

    def client() -> api_client.Client:
        return api_client.Client(fake.SERVER, fake.TOKEN, transport=api.transport)

    plane = agent.Agent(settings, runtime(tmp_path), [], make_client=client)
    obj = api.add(
        {
            "kind": "Replica",
            "metadata": {"name": "chat-0", "namespace": "default", "generation": 1},
            "spec": bound_spec(resources={"nodes": 2}),
            "status": {"phase": "Scheduled"},
        }
    )
    plane.cache.apply(api_client.WatchEvent("RESYNC", {"items": [obj]}))
    plane.step()
    assert plane.runtime.names() == []  # nothing was started
    plane.reporter.flush(client())
    stored = api.find("Replica", "chat-0")
    assert stored is not None and stored["status"]["phase"] == "Failed"
    assert stored["status"]["message"] == (
        "the process runtime runs single-node replicas; this one needs 2 nodes"
    )


def test_the_process_runtimes_version_is_the_hosts_kernel(tmp_path: Path) -> None:
    import platform

    assert runtime(tmp_path).version() == f"{platform.system()} {platform.release()}"
