"""Binding replicas to pools against a real control plane, with FAKE AGENTs.

Unschedulable replicas say why (condition and Event) and bind once the fleet lets them;
many replicas competing for a pool never overcommit it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from inferplane import client as api_client
from tests.integration.fake_agent import gpu_pool
from tests.integration.fleet import condition, events_for, fleet, live, replicas_of, wait_for
from tests.integration.fleet import workload as deployment_of
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration
H100 = ['device.attributes["gpu.nvidia.com"].productName == "H100"']


def _client(control: ControlProcess, namespace: str) -> api_client.Client:
    return api_client.Client(control.url, control.admin_token, namespace=namespace)


def test_unschedulable_says_why_then_binds_when_a_pool_fits(
    control: ControlProcess, namespace: str
) -> None:
    agents = [{"cluster": "a", "pools": [gpu_pool("a100", gpus=8, product="A100")]}]
    resources = {"devices": [{"name": "gpu", "count": 2, "selectors": H100}]}
    with fleet(control, namespace, *agents) as (agent,), _client(control, namespace) as client:
        client.create(deployment_of(namespace, replicas=1, resources=resources))
        (replica,) = wait_for("a replica", lambda: replicas_of(client, namespace, "chat"))
        name = replica["metadata"]["name"]

        def refused() -> dict[str, Any] | None:
            found = condition(client.get("Replica", name, namespace=namespace), "Scheduled")
            return found if found and found["status"] == "False" else None

        why = wait_for("Scheduled=False", refused)
        assert why["reason"] == "Unschedulable"
        assert why["message"].startswith("0/"), why["message"]
        assert "clusters available" in why["message"]
        event = wait_for(
            "a FailedScheduling event",
            lambda: events_for(client, namespace, name, "FailedScheduling"),
        )[0]
        assert event["spec"]["type"] == "Warning"
        assert event["spec"]["message"] == why["message"]

        client.create(
            {
                "apiVersion": "inferplane.dev/v1",
                "kind": "Pool",
                "metadata": {"name": f"{agent.cluster}-h100"},
                "spec": {
                    **_spec(gpu_pool("h100", gpus=2, product="H100")),
                    "cluster": agent.cluster,
                },
            }
        )
        agent.pools.append(gpu_pool("h100"))  # removed with the fleet at the end

        def bound() -> dict[str, Any] | None:
            found = client.get("Replica", name, namespace=namespace)
            return found if found["spec"].get("pool") else None

        placed = wait_for("the replica to bind", bound)
    assert placed["spec"]["pool"] == f"{agent.cluster}-h100"
    assert condition(placed, "Scheduled")["status"] == "True"
    assert [d["indexes"] for d in placed["spec"]["devices"]] == [[0, 1]]


def _spec(pool: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in pool.items() if k != "name"}


def test_many_replicas_never_overcommit_a_pool(control: ControlProcess, namespace: str) -> None:
    agents = [{"cluster": "a", "pools": [gpu_pool("gpu", nodes=2, gpus=4)]}]
    with fleet(control, namespace, *agents) as (agent,), _client(control, namespace) as client:
        for name in ("left", "right"):
            client.create(deployment_of(namespace, name, replicas=6))

        def settled() -> list[dict[str, Any]] | None:
            found = live(client.list("Replica", namespace=namespace).items)
            placed = [r for r in found if r["spec"].get("pool")]
            refused = [
                r for r in found if (condition(r, "Scheduled") or {}).get("status") == "False"
            ]
            return found if len(found) == 12 and len(placed) == 8 and len(refused) == 4 else None

        wait_for("8 replicas bound and 4 refused", settled)
        _check_books(client, namespace, f"{agent.cluster}-gpu", expected=8)

        client.set_scale("Deployment", "left", 2, namespace=namespace)

        def rebound() -> bool:
            found = client.list("Replica", namespace=namespace).items  # deleted ones gone too
            return len(found) == 8 and all(r["spec"].get("pool") for r in found)

        wait_for("the freed devices to go to waiting replicas", rebound)
        _check_books(client, namespace, f"{agent.cluster}-gpu", expected=8)


def _check_books(client: api_client.Client, namespace: str, pool: str, *, expected: int) -> None:
    """Every device is held once in the pool's books, and the books match the replicas."""
    nodes = client.get("Pool", pool)["status"]["nodes"]
    held = Counter((n["index"], i) for n in nodes for i in n["devices"].get("gpu", []))
    assert all(count == 1 for count in held.values())
    assert all(0 <= i < 4 for _, i in held)
    claimed = Counter(
        (d["node"], i)
        for r in client.list("Replica", namespace=namespace).items
        if r["spec"].get("pool") == pool
        for d in r["spec"]["devices"]
        for i in d["indexes"]
    )
    assert all(count == 1 for count in claimed.values()), "a device was given twice"
    assert set(claimed) == set(held) and len(held) == expected


def test_replicas_created_together_spread_across_regions(
    control: ControlProcess, namespace: str
) -> None:
    """Soft preferences hold for replicas decided at the same moment: each decision sees
    the bindings before it (they used to be decided concurrently and both saw none)."""
    agents = [
        {"cluster": "east", "labels": {"region": "east"}, "pools": [gpu_pool("gpu", gpus=8)]},
        {"cluster": "west", "labels": {"region": "west"}, "pools": [gpu_pool("gpu", gpus=8)]},
    ]
    placement = {
        "clusterSelector": {"matchLabels": {"test": namespace}},
        "strategy": "spread",
        "spreadLabel": "region",
    }
    with fleet(control, namespace, *agents), _client(control, namespace) as client:
        client.create(deployment_of(namespace, replicas=4, placement=placement))

        def bound() -> list[dict[str, Any]] | None:
            found = live(client.list("Replica", namespace=namespace).items)
            return found if len(found) == 4 and all(r["spec"].get("pool") for r in found) else None

        placed = wait_for("4 replicas bound", bound)
    clusters = Counter(r["spec"]["cluster"] for r in placed)
    assert clusters == {f"{namespace}-east": 2, f"{namespace}-west": 2}
