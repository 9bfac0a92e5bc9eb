"""The autoscaler's loop against a real control plane, with a FAKE AGENT (issue 13, item 4):
load posted to the metrics channel drives a deployment up in the panic window and back down
once the load is gone, each decision a Scaled event and status.autoscaling, shown by
`describe`. The load is posted the way the agent posts it, as the cluster's identity; the
agent's own sender is tested on its own (tests/unit/agent/test_loadsender.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from inferplane import client as api_client
from inferplane.cli import describe
from tests.integration.fake_agent import gpu_pool
from tests.integration.fleet import (
    Load,
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

POLICY = {
    "minReplicas": 1,
    "maxReplicas": 4,
    "metric": "concurrency",
    "target": 2,
    "stableWindowSeconds": 6,
    "panicWindowSeconds": 2,
}


def _count(client: api_client.Client, namespace: str, name: str = "chat") -> int:
    return int(client.get("Deployment", name, namespace=namespace)["spec"]["replicas"])


def test_load_drives_a_deployment_up_and_back_down(control: ControlProcess, namespace: str) -> None:
    agents = [{"cluster": "a", "pools": [gpu_pool("gpu", nodes=2, gpus=4)]}]
    with (
        fleet(control, namespace, *agents) as started,
        api_client.Client(control.url, control.admin_token, namespace=namespace) as client,
    ):
        client.create(workload(namespace, replicas=1, autoscaling=POLICY))
        load = Load(client, started[0].cluster, namespace)
        with load.running():
            wait_for("1 Ready replica", lambda: _ready(client, namespace) == 1)
            load.total = 8.0  # 4 replicas' worth at target 2: 4× one replica, a panic
            wait_for("scaled to 4", lambda: _count(client, namespace) == 4)
            seen = client.get("Deployment", "chat", namespace=namespace)
            assert seen["status"]["autoscaling"]["mode"] == "panic"
            wait_for("4 Ready", lambda: _ready(client, namespace) == 4)
            load.total = 0.0
            wait_for("back to 1", lambda: _count(client, namespace) == 1, timeout=90)

        def messages() -> list[str]:
            return [e["spec"]["message"] for e in events_for(client, namespace, "chat", "Scaled")]

        # The event follows the write of spec.replicas: wait for it rather than race it.
        wait_for("the scale-down's event", lambda: any(" → 1: " in m for m in messages()))
        assert any(m.startswith("scaled 1 → 4: concurrency") for m in messages()), messages()
        scaled = events_for(client, namespace, "chat", "Scaled")
        obj = client.get("Deployment", "chat", namespace=namespace)
        cold = obj["status"]["autoscaling"]["coldStartSeconds"]
        age = datetime.now(UTC) - datetime.fromisoformat(obj["metadata"]["creationTimestamp"])
        assert 0 <= cold <= age.total_seconds(), "measured on the replicas it started"
        # The fake agent reports Ready within a few 0.1-s loops; the whole-second
        # creationTimestamp alone would read up to a second more.
        assert cold < 1.5, cold
        text = describe.render(obj, scaled, now=datetime.now(UTC))
        assert "Autoscaling:" in text and "scaled" in text and "target 2" in text


def test_a_replica_still_starting_counts_as_capacity(
    control: ControlProcess, namespace: str
) -> None:
    """While the new replicas load, the same load does not keep adding replicas."""
    holding = threading.Event()
    holding.set()
    agents = [
        {
            "cluster": "a",
            "pools": [gpu_pool("gpu", nodes=2, gpus=4)],
            "hold": lambda replica: holding.is_set() and replica["metadata"]["name"] != first[0],
        }
    ]
    first: list[str] = [""]
    policy = {**POLICY, "maxReplicas": 8}
    with (
        fleet(control, namespace, *agents) as started,
        api_client.Client(control.url, control.admin_token, namespace=namespace) as client,
    ):
        client.create(workload(namespace, replicas=1, autoscaling=policy))
        first[0] = wait_for("a replica", lambda: _names(client, namespace))[0]
        load = Load(client, started[0].cluster, namespace)
        with load.running():
            wait_for("1 Ready replica", lambda: _ready(client, namespace) == 1)
            load.total = 6.0  # 3 replicas' worth
            wait_for("scaled to 3", lambda: _count(client, namespace) == 3)
            # Two replicas held Starting for a while: the load is unchanged, so is the count.
            for _ in range(10):
                assert _count(client, namespace) == 3
                threading.Event().wait(0.4)
            holding.clear()
            wait_for("3 Ready", lambda: _ready(client, namespace) == 3)


def _ready(client: api_client.Client, namespace: str, name: str = "chat") -> int:
    return sum(1 for r in live(replicas_of(client, namespace, name)) if phase(r) == "Ready")


def _names(client: api_client.Client, namespace: str) -> list[str] | None:
    found = [r["metadata"]["name"] for r in live(replicas_of(client, namespace, "chat"))]
    return found or None


def test_scale_up_spills_to_the_next_cluster_when_one_is_full(
    control: ControlProcess, namespace: str
) -> None:
    """Two planes of different sizes (2 and 4 GPUs): new replicas go through the scheduler,
    which fills the small one and places the rest on the big one."""
    agents = [
        {"cluster": "small", "pools": [gpu_pool("gpu", nodes=1, gpus=2)]},
        {"cluster": "big", "pools": [gpu_pool("gpu", nodes=1, gpus=4)]},
    ]
    policy = {**POLICY, "maxReplicas": 6}
    with (
        fleet(control, namespace, *agents) as started,
        api_client.Client(control.url, control.admin_token, namespace=namespace) as client,
    ):
        client.create(workload(namespace, replicas=1, autoscaling=policy))
        load = Load(client, started[0].cluster, namespace)
        with load.running():
            wait_for("1 Ready replica", lambda: _ready(client, namespace) == 1)
            load.total = 12.0  # 6 replicas' worth at target 2
            wait_for("scaled to 6", lambda: _count(client, namespace) == 6)
            wait_for("6 Ready", lambda: _ready(client, namespace) == 6)
            where = sorted(
                r["spec"]["cluster"] for r in live(replicas_of(client, namespace, "chat"))
            )
        assert where == [f"{namespace}-big"] * 4 + [f"{namespace}-small"] * 2


def test_predictive_mode_provisions_ahead_of_a_ramp(
    control: ControlProcess, namespace: str
) -> None:
    """The same rising load on two deployments: the predictive one, forecasting 8 s ahead
    (its cold start), reaches each size before the reactive one does."""
    agents = [{"cluster": "a", "pools": [gpu_pool("gpu", nodes=4, gpus=4)]}]
    policy = {**POLICY, "maxReplicas": 8}
    ahead = {
        **policy,
        "mode": "predictive",
        "predictive": {"bucketSeconds": 1, "coldStartSeconds": 8},
    }
    with (
        fleet(control, namespace, *agents) as started,
        api_client.Client(control.url, control.admin_token, namespace=namespace) as client,
    ):
        client.create(workload(namespace, "reactive", replicas=1, autoscaling=policy))
        client.create(workload(namespace, "ahead", replicas=1, autoscaling=ahead))
        loads = [
            Load(client, started[0].cluster, namespace, name) for name in ("reactive", "ahead")
        ]
        reached: dict[str, float] = {}
        with loads[0].running(), loads[1].running():
            for name in ("reactive", "ahead"):
                wait_for(f"{name} Ready", lambda n=name: _ready(client, namespace, n) == 1)
            start = time.monotonic()
            while len(reached) < 2 and time.monotonic() - start < 60:
                total = min(12.0, 1.0 + 0.5 * (time.monotonic() - start))
                for load in loads:
                    load.total = total
                for name in ("reactive", "ahead"):
                    if name not in reached and _count(client, namespace, name) >= 4:
                        reached[name] = time.monotonic() - start
                time.sleep(0.25)
        assert set(reached) == {"reactive", "ahead"}, reached
        assert reached["ahead"] + 2 <= reached["reactive"], reached
        seen = client.get("Deployment", "ahead", namespace=namespace)["status"]["autoscaling"]
        assert "forecast" in seen["reason"] or "forecast" in seen["lastScaleReason"], seen
