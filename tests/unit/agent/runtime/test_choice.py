"""The runtime is learned from the Cluster at start, and remembered for a start without the
control plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from inferplane import client as api_client
from inferplane.agent.runtime import choice, process, registry
from tests.unit import fake_resource_api as fake


def cluster(**spec: Any) -> dict[str, Any]:
    return {"kind": "Cluster", "metadata": {"name": "eu-1"}, "spec": spec}


def client_of(api: fake.FakeResourceApi) -> Any:
    return lambda: api_client.Client(fake.SERVER, fake.TOKEN, transport=api.transport)


def unreachable() -> api_client.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return api_client.Client(fake.SERVER, fake.TOKEN, transport=httpx.MockTransport(refuse))


def test_the_clusters_spec_runtime_is_chosen(tmp_path: Path) -> None:
    api = fake.FakeResourceApi()
    api.add(cluster(runtime="kubernetes"))
    chosen = choice.learn(client_of(api), "eu-1", tmp_path)
    assert chosen == choice.Choice("kubernetes", "cluster")


def test_a_cluster_without_spec_runtime_runs_the_default(tmp_path: Path) -> None:
    api = fake.FakeResourceApi()
    api.add(cluster(region="eu"))
    assert choice.learn(client_of(api), "eu-1", tmp_path) == choice.Choice("process", "cluster")


def test_no_cluster_yet_is_the_default_or_what_ran_last(tmp_path: Path) -> None:
    api = fake.FakeResourceApi()
    assert choice.learn(client_of(api), "eu-1", tmp_path) == choice.Choice("process", "default")
    choice.remember(tmp_path, "eu-1", "elsewhere")
    assert choice.learn(client_of(api), "eu-1", tmp_path).kind == "elsewhere"


def test_without_the_control_plane_the_remembered_runtime_runs(tmp_path: Path) -> None:
    assert choice.learn(unreachable, "eu-1", tmp_path) == choice.Choice("process", "default")
    choice.remember(tmp_path, "eu-1", "elsewhere")
    assert choice.learn(unreachable, "eu-1", tmp_path) == choice.Choice("elsewhere", "remembered")
    assert choice.recall(tmp_path, "other") is None  # another cluster's data dir: not ours
    choice.path_in(tmp_path).write_text("{not json")
    assert choice.recall(tmp_path, "eu-1") is None


def test_runtime_for_builds_and_remembers_the_clusters_runtime(tmp_path: Path) -> None:
    api = fake.FakeResourceApi()
    api.add(cluster(runtime="process"))
    options = registry.RuntimeOptions(tmp_path)
    built = choice.runtime_for(client_of(api), "eu-1", tmp_path, options).runtime
    assert isinstance(built, process.ProcessRuntime)
    assert choice.recall(tmp_path, "eu-1") == "process"


def test_runtime_for_refuses_a_runtime_this_agent_lacks(tmp_path: Path) -> None:
    api = fake.FakeResourceApi()
    api.add(cluster(runtime="nomad"))
    options = registry.RuntimeOptions(tmp_path)
    with pytest.raises(registry.UnknownRuntime, match=r"spec\.runtime 'nomad'"):
        choice.runtime_for(client_of(api), "eu-1", tmp_path, options)
    assert choice.recall(tmp_path, "eu-1") is None  # nothing remembered that cannot run


def test_the_runtimes_settings_come_from_its_section_and_are_remembered(tmp_path: Path) -> None:
    api = fake.FakeResourceApi()
    api.add(cluster(runtime="process", slurm={"partition": "gpu"}))
    chosen = choice.learn(client_of(api), "eu-1", tmp_path)
    assert chosen.settings == {}, "another runtime's section is not this one's"
    api = fake.FakeResourceApi()
    api.add(cluster(runtime="slurm", slurm={"partition": "gpu"}))
    assert choice.learn(client_of(api), "eu-1", tmp_path).settings == {"partition": "gpu"}
    choice.remember(tmp_path, "eu-1", "slurm", {"partition": "gpu"})
    remembered = choice.learn(unreachable, "eu-1", tmp_path)
    assert remembered == choice.Choice("slurm", "remembered", {"partition": "gpu"})
