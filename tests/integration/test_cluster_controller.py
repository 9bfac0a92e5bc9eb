"""Cluster health, eviction and drain against a real control plane, with FAKE AGENTs.

A FAKE AGENT that stops is a killed agent: its heartbeats end, its replicas stay as they
were. Grace periods are short (seconds); nothing here asserts how long anything took.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from inferplane import client as api_client
from inferplane.api import wellknown
from inferplane.cli import main
from tests.integration.fake_agent import gpu_pool
from tests.integration.fleet import (
    all_ready,
    condition,
    events_for,
    fleet,
    live,
    phase,
    replicas_of,
    wait_for,
    workload,
)
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration
FLEET_EVENTS = "inferplane-system"


def _client(control: ControlProcess, namespace: str) -> api_client.Client:
    return api_client.Client(control.url, control.admin_token, namespace=namespace)


def _cluster_is(client: api_client.Client, name: str, wanted: str) -> dict[str, Any] | None:
    found = client.get("Cluster", name)
    return found if phase(found) == wanted else None


def test_missed_heartbeats_make_a_cluster_not_ready(
    control: ControlProcess, namespace: str
) -> None:
    agents = [
        {"cluster": "a", "pools": [gpu_pool("gpu")], "heartbeat_grace": 2.0},
    ]
    with fleet(control, namespace, *agents) as (agent,), _client(control, namespace) as client:
        client.create(workload(namespace, replicas=1))
        (replica,) = wait_for("a Ready replica", lambda: all_ready(client, namespace, "chat", 1))
        ready = wait_for(
            "Ready=True", lambda: condition(client.get("Cluster", agent.cluster), "Ready")
        )
        assert ready["status"] == "True"
        name = replica["metadata"]["name"]
        wait_for("an endpoint", lambda: client.list("Endpoint", namespace=namespace).items)

        agent.stop()
        cluster = wait_for("NotReady", lambda: _cluster_is(client, agent.cluster, "NotReady"))
        lost = condition(cluster, "Ready")
        assert (lost["status"], lost["reason"]) == ("False", "HeartbeatMissed")
        event = wait_for(
            "a ClusterNotReady event",
            lambda: events_for(client, FLEET_EVENTS, agent.cluster, "ClusterNotReady"),
        )[0]
        assert event["spec"]["type"] == "Warning"

        def unrouted() -> bool:
            (endpoint,) = client.list("Endpoint", namespace=namespace).items
            return endpoint["status"]["ready"] is False

        wait_for("the endpoint to stop being ready", unrouted)
        # Within the eviction grace (120 s here) the replica stays where it is.
        assert client.get("Replica", name, namespace=namespace)["spec"]["cluster"] == agent.cluster

        # Cascade deletion with no agent to stop the engine: the control plane lets go itself.
        client.delete("Deployment", "chat", namespace=namespace)
        wait_for("the replica to go", lambda: not replicas_of(client, namespace, "chat"))
        assert events_for(client, namespace, name, "AgentGone")
        assert client.get("Pool", f"{agent.cluster}-gpu")["status"]["nodes"] == []


def test_replicas_of_a_lost_cluster_are_placed_elsewhere(
    control: ControlProcess, namespace: str
) -> None:
    agents = [
        {
            "cluster": "a",
            "pools": [gpu_pool("gpu", gpus=2)],
            "heartbeat_grace": 2.0,
            "eviction_grace": 1.0,
        },
        {"cluster": "b", "pools": [gpu_pool("gpu", gpus=2)]},
    ]
    with fleet(control, namespace, *agents) as (lost, kept), _client(control, namespace) as client:
        client.create(workload(namespace, replicas=2))
        before = wait_for("2 Ready replicas", lambda: all_ready(client, namespace, "chat", 2))
        assert {r["spec"]["cluster"] for r in before} == {lost.cluster}, "binpack: one cluster"

        lost.stop()

        def moved() -> list[dict[str, Any]] | None:
            found = all_ready(client, namespace, "chat", 2)
            return (
                found if found and {r["spec"]["cluster"] for r in found} == {kept.cluster} else None
            )

        after = wait_for("both replicas Ready on the other cluster", moved)
        assert not {r["metadata"]["name"] for r in before} & {r["metadata"]["name"] for r in after}
        replaced = {r["metadata"]["annotations"].get(wellknown.REPLACES_ANNOTATION) for r in after}
        assert replaced == {r["metadata"]["name"] for r in before}
        assert client.get("Pool", f"{lost.cluster}-gpu")["status"]["nodes"] == [], "released"
        for old in before:
            name = old["metadata"]["name"]
            assert events_for(client, namespace, name, "Evicted"), name
            assert events_for(client, namespace, name, "AgentGone"), name


def test_drain_moves_each_replica_make_before_break(
    control: ControlProcess, namespace: str, tmp_path: Path
) -> None:
    agents = [
        {"cluster": "a", "pools": [gpu_pool("gpu", gpus=4)]},
        {"cluster": "b", "pools": [gpu_pool("gpu", gpus=4)]},
    ]
    with (
        fleet(control, namespace, *agents) as (drained, other),
        _client(control, namespace) as client,
    ):
        client.create(workload(namespace, replicas=3))
        before = wait_for("3 Ready replicas", lambda: all_ready(client, namespace, "chat", 3))
        assert {r["spec"]["cluster"] for r in before} == {drained.cluster}
        since = client.list("Replica", namespace=namespace).resource_version
        result = _cli(control, tmp_path, "drain", drained.cluster)
        assert result.exit_code == 0, result.output
        assert f"cluster/{drained.cluster} drained" in result.output
        order = _replay(client, namespace, since, before)
        cluster = client.get("Cluster", drained.cluster)
        after = replicas_of(client, namespace, "chat")
    assert cluster["spec"]["cordoned"] is True
    assert condition(cluster, "Drained")["status"] == "True"
    assert {r["spec"]["cluster"] for r in after} == {other.cluster}
    for old in before:
        name = old["metadata"]["name"]
        replacement = order["replacement"][name]
        assert order["ready"][replacement] < order["deleted"][name], f"{name} went too early"
    assert min(order["serving"]) >= 3, "a replica stopped before its replacement was Ready"


def _replay(
    client: api_client.Client, namespace: str, since: str, initial: list[dict[str, Any]]
) -> dict[str, Any]:
    """From the watch log: at which change each replica turned Ready and began deleting,
    which replica replaced which, and how many Ready replicas served after each change.
    Stops at the drain's end state: no replica left of `initial`, the others Ready."""
    ready: dict[str, int] = {}
    deleted: dict[str, int] = {}
    replacement: dict[str, str] = {}
    serving: list[int] = []
    state = {r["metadata"]["name"]: r for r in initial}
    with client.watch("Replica", namespace=namespace, resource_version=since) as events:
        for index, event in enumerate(events):
            obj, name = event.object, event.object["metadata"]["name"]
            if event.type == "DELETED":
                state.pop(name, None)
            else:
                state[name] = obj
            if phase(obj) == "Ready" and not obj["metadata"].get("deletionTimestamp"):
                ready.setdefault(name, index)
            if obj["metadata"].get("deletionTimestamp"):
                deleted.setdefault(name, index)
            replaces = obj["metadata"].get("annotations", {}).get(wellknown.REPLACES_ANNOTATION)
            if replaces:
                replacement[replaces] = name
            serving.append(sum(phase(r) == "Ready" for r in live(list(state.values()))))
            old_left = {r["metadata"]["name"] for r in initial} & set(state)
            if not old_left and all(phase(r) == "Ready" for r in state.values()):
                break
    return {"ready": ready, "deleted": deleted, "replacement": replacement, "serving": serving}


def _cli(control: ControlProcess, tmp_path: Path, *args: str) -> Any:
    env = {
        "INFERPLANE_SERVER": control.url,
        "INFERPLANE_TOKEN": control.admin_token,
        "INFERPLANE_CONFIG": str(tmp_path / "config"),
        "COLUMNS": "200",
    }
    return CliRunner().invoke(main.app, list(args), env=env)
