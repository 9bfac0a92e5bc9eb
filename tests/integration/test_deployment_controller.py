"""Deployment → Replicas → Endpoints against a real control plane, with a FAKE AGENT.

Scaling, rolling updates within maxSurge / maxUnavailable (checked at every change the
watch shows, not sampled), recreate, endpoints following readiness, and cascade deletion.
"""

from __future__ import annotations

from typing import Any

import pytest

from inferplane import client as api_client
from inferplane.api import wellknown
from tests.integration.fake_agent import gpu_pool
from tests.integration.fleet import (
    all_ready,
    condition,
    fleet,
    live,
    phase,
    replicas_of,
    wait_for,
    workload,
)
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration


def _client(control: ControlProcess, namespace: str) -> api_client.Client:
    return api_client.Client(control.url, control.admin_token, namespace=namespace)


def test_scale_up_down_and_to_zero(control: ControlProcess, namespace: str) -> None:
    agents = [{"cluster": "a", "pools": [gpu_pool("gpu", nodes=2, gpus=4)]}]
    with fleet(control, namespace, *agents), _client(control, namespace) as client:
        client.create(workload(namespace, replicas=3))
        ready = wait_for("3 Ready replicas", lambda: all_ready(client, namespace, "chat", 3))
        for replica in ready:
            meta = replica["metadata"]
            assert meta["name"].startswith("chat-") and len(meta["name"]) == len("chat-") + 5
            assert meta["labels"][wellknown.TEMPLATE_HASH_LABEL]
            assert meta["finalizers"] == list(wellknown.REPLICA_FINALIZERS)
            assert meta["ownerReferences"][0]["kind"] == "Deployment"
            assert replica["spec"]["model"] == {
                "name": "tiny",
                "version": "v1",
                "source": "file:///models/tiny",
                "format": "safetensors",
            }
        status = wait_for("deployment Ready", lambda: _status_if(client, namespace, "Ready"))
        assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (3, 3, 3)
        assert condition({"status": status}, "Available")["status"] == "True"

        client.set_scale("Deployment", "chat", 1, namespace=namespace)
        wait_for("1 replica left", lambda: all_ready(client, namespace, "chat", 1))
        client.set_scale("Deployment", "chat", 0, namespace=namespace)
        wait_for("ScaledToZero", lambda: _status_if(client, namespace, "ScaledToZero"))
        assert replicas_of(client, namespace, "chat") == []


@pytest.mark.parametrize(
    ("surge", "unavailable"), [(1, 0), (0, 1), ("50%", "25%")], ids=["surge", "unavail", "pct"]
)
def test_rolling_update_stays_within_surge_and_unavailable(
    control: ControlProcess, namespace: str, surge: Any, unavailable: Any
) -> None:
    desired = 4
    max_total = desired + (2 if surge == "50%" else surge)
    min_ready = desired - (1 if unavailable == "25%" else unavailable)
    agents = [{"cluster": "a", "pools": [gpu_pool("gpu", nodes=2, gpus=4)]}]
    rollout = {"maxSurge": surge, "maxUnavailable": unavailable}
    with fleet(control, namespace, *agents), _client(control, namespace) as client:
        client.create(workload(namespace, replicas=desired, rollout=rollout))
        before = wait_for("all Ready", lambda: all_ready(client, namespace, "chat", desired))
        old_hash = before[0]["metadata"]["labels"][wellknown.TEMPLATE_HASH_LABEL]
        since = client.list("Replica", namespace=namespace).resource_version
        patch = {"spec": {"engine": {"args": ["--max-num-seqs=8"]}}}
        client.patch("Deployment", "chat", patch, namespace=namespace)
        seen = _watch_rollout(client, namespace, since, old_hash, desired)
    assert max(total for total, _ in seen) <= max_total, "maxSurge exceeded"
    assert min(ready for _, ready in seen) >= min_ready, "maxUnavailable exceeded"
    assert max(total for total, _ in seen) > desired or min(r for _, r in seen) < desired


def _watch_rollout(
    client: api_client.Client, namespace: str, since: str, old_hash: str, desired: int
) -> list[tuple[int, int]]:
    """(replicas present, replicas Ready) after every change, until the rollout is done."""
    state: dict[str, dict[str, Any]] = {}
    for replica in client.list("Replica", namespace=namespace).items:
        state[replica["metadata"]["name"]] = replica
    seen: list[tuple[int, int]] = []
    with client.watch("Replica", namespace=namespace, resource_version=since) as events:
        for event in events:
            name = event.object["metadata"]["name"]
            if event.type == "DELETED":
                state.pop(name, None)
            else:
                state[name] = event.object
            present = list(state.values())
            ready = [r for r in live(present) if phase(r) == "Ready"]
            seen.append((len(present), len(ready)))
            hashes = {r["metadata"]["labels"][wellknown.TEMPLATE_HASH_LABEL] for r in present}
            if len(present) == desired and len(ready) == desired and old_hash not in hashes:
                return seen
    raise AssertionError("the watch ended before the rollout did")


def test_recreate_stops_every_old_replica_first(control: ControlProcess, namespace: str) -> None:
    agents = [{"cluster": "a", "pools": [gpu_pool("gpu", nodes=1, gpus=4)]}]
    with fleet(control, namespace, *agents), _client(control, namespace) as client:
        client.create(workload(namespace, replicas=2, rollout={"strategy": "recreate"}))
        before = wait_for("all Ready", lambda: all_ready(client, namespace, "chat", 2))
        old_hash = before[0]["metadata"]["labels"][wellknown.TEMPLATE_HASH_LABEL]
        since = client.list("Replica", namespace=namespace).resource_version
        patch = {"spec": {"engine": {"args": ["--seed=1"]}}}
        client.patch("Deployment", "chat", patch, namespace=namespace)
        hashes_seen: list[set[str]] = []
        state = {r["metadata"]["name"]: r for r in before}
        with client.watch("Replica", namespace=namespace, resource_version=since) as events:
            for event in events:
                name = event.object["metadata"]["name"]
                if event.type == "DELETED":
                    state.pop(name, None)
                else:
                    state[name] = event.object
                hashes_seen.append(
                    {r["metadata"]["labels"][wellknown.TEMPLATE_HASH_LABEL] for r in state.values()}
                )
                ready = [r for r in live(list(state.values())) if phase(r) == "Ready"]
                if len(state) == 2 and len(ready) == 2 and old_hash not in hashes_seen[-1]:
                    break
    assert all(len(hashes) <= 1 for hashes in hashes_seen), "old and new replicas overlapped"


def test_endpoints_follow_readiness(control: ControlProcess, namespace: str) -> None:
    agents = [
        {"cluster": "a", "labels": {"region": "eu-west"}, "pools": [gpu_pool("gpu")]},
    ]
    with fleet(control, namespace, *agents) as (agent,), _client(control, namespace) as client:
        client.create(workload(namespace, replicas=1))
        (replica,) = wait_for("a Ready replica", lambda: all_ready(client, namespace, "chat", 1))
        name = replica["metadata"]["name"]
        endpoint = wait_for("an endpoint", lambda: _endpoint(client, namespace, name))
        assert endpoint["spec"] == {
            "url": agent.url_of(name),
            "external": False,
            "deployment": "chat",
            "replica": name,
            "cluster": agent.cluster,
            "region": "eu-west",
            "engineTokenSecret": f"engine-{replica['metadata']['uid']}",
        }
        assert endpoint["status"]["ready"] is True
        assert endpoint["metadata"]["ownerReferences"][0]["uid"] == replica["metadata"]["uid"]

        crash = {"status": {"phase": "CrashLoopBackOff", "restarts": 3}}
        client.patch("Replica", name, crash, namespace=namespace, subresource="status")
        wait_for("the endpoint to go", lambda: _endpoint(client, namespace, name) is None)
        ready = {"status": {"phase": "Ready"}}
        client.patch("Replica", name, ready, namespace=namespace, subresource="status")
        wait_for("the endpoint to return", lambda: _endpoint(client, namespace, name))


def test_deleting_a_deployment_drains_and_removes_everything(
    control: ControlProcess, namespace: str
) -> None:
    agents = [{"cluster": "a", "pools": [gpu_pool("gpu", nodes=1, gpus=2)]}]
    with fleet(control, namespace, *agents) as (agent,), _client(control, namespace) as client:
        client.create(workload(namespace, replicas=2))
        wait_for("2 Ready replicas", lambda: all_ready(client, namespace, "chat", 2))
        wait_for(
            "2 endpoints", lambda: len(client.list("Endpoint", namespace=namespace).items) == 2
        )
        pool = f"{agent.cluster}-gpu"
        assert client.get("Pool", pool)["status"]["nodes"]
        since = client.list("Replica", namespace=namespace).resource_version
        client.delete("Deployment", "chat", namespace=namespace)
        drained: set[str] = set()
        with client.watch("Replica", namespace=namespace, resource_version=since) as events:
            for event in events:
                if phase(event.object) == "Draining":
                    drained.add(event.object["metadata"]["name"])
                if (
                    event.type == "DELETED"
                    and not client.list("Replica", namespace=namespace).items
                ):
                    break
        assert len(drained) == 2, "the agent drained each replica before it went"
        assert client.list("Endpoint", namespace=namespace).items == []
        assert client.get("Pool", pool)["status"]["nodes"] == [], "devices released"


def _status_if(client: api_client.Client, namespace: str, wanted: str) -> dict[str, Any] | None:
    status: dict[str, Any] = client.get("Deployment", "chat", namespace=namespace)["status"]
    return status if status.get("phase") == wanted else None


def _endpoint(client: api_client.Client, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return client.get("Endpoint", name, namespace=namespace)
    except api_client.NotFound:
        return None
