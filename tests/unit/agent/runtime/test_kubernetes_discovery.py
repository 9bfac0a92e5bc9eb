"""The pools a kubernetes agent reports from its Nodes: one per node shape, with the devices
NVIDIA's device plugin and GPU feature discovery describe, in the shape host discovery
writes; cordoned nodes left out."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.agent import discovery as host_discovery
from inferplane.agent.runtime.kubernetes import discovery
from inferplane.api import fleet, meta

H100 = {
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    "nvidia.com/gpu.memory": "81559",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.compute.major": "9",
    "nvidia.com/gpu.compute.minor": "0",
    "nvidia.com/cuda.driver-version.full": "550.54.15",
    "nvidia.com/mig.strategy": "none",
    "node.kubernetes.io/instance-type": "p5.48xlarge",
}


def node(
    name: str, labels: dict[str, str] | None = None, *, cordoned: bool = False,
    cpu: str = "191500m", memory: str = "2046000000Ki", **devices: str,
) -> dict[str, Any]:  # fmt: skip
    capacity = {"cpu": "192", "memory": "2048Gi", "pods": "110", **devices}
    allocatable = {**capacity, "cpu": cpu, "memory": memory}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {"capacity": capacity, "allocatable": allocatable},
    }


def gpus(n: int) -> dict[str, str]:
    return {"nvidia.com/gpu": str(n)}


def valid(plan: host_discovery.PoolPlan) -> None:
    """The plan is a PoolSpec, and a pool name an agent can report."""
    fleet.PoolSpec.model_validate({**plan.spec, "cluster": "eu-1"})
    meta.check_dns_label(host_discovery.object_name("eu-1", plan.name))


def test_identical_gpu_nodes_are_one_pool_with_feature_discovery_attributes() -> None:
    nodes = [node(f"h{i}", H100, **gpus(8)) for i in range(3)]
    # a few KiB less reserved on one node: the same shape
    nodes.append(node("h3", H100, memory="2045999000Ki", **gpus(8)))
    [shape] = discovery.shapes(nodes)
    plan = shape.plan
    valid(plan)
    assert plan.name == "gpu-h100-8"
    assert plan.spec["nodeCount"] == 4
    assert plan.spec["cpu"] == "191" and plan.spec["memory"] == "1951Gi"
    assert plan.spec["devicesPerNode"] == [{
        "name": "gpu", "count": 8, "driver": "gpu.nvidia.com",
        "attributes": {"type": "gpu", "productName": "H100",
                       "productFullName": "NVIDIA-H100-80GB-HBM3",
                       "cudaComputeCapability": "9.0", "architecture": "Hopper",
                       "driverVersion": "550.54.15"},
        "capacity": {"memory": "81559Mi"},
    }]  # fmt: skip
    assert shape.node_selector == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.memory": "81559", "node.kubernetes.io/instance-type": "p5.48xlarge",
    }  # fmt: skip
    assert shape.nodes == ("h0", "h1", "h2", "h3")


def test_each_shape_is_its_own_pool_and_cpu_nodes_are_a_cpu_pool() -> None:
    a100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB", "nvidia.com/gpu.memory": "40960"}
    nodes = [
        node("h0", H100, **gpus(8)),
        node("a0", a100, **gpus(4)),
        node("a1", a100, **gpus(4)),
        node("c0", cpu="15800m", memory="64000000Ki"),
        node("c1", cpu="15900m", memory="64100000Ki"),
    ]
    plans = {plan.name: plan for plan in discovery.plans(nodes)}
    assert sorted(plans) == ["cpu-15c-61gi", "gpu-a100-4", "gpu-h100-8"]
    for plan in plans.values():
        valid(plan)
    assert plans["gpu-a100-4"].spec["nodeCount"] == 2
    assert plans["cpu-15c-61gi"].spec == {"nodeCount": 2, "cpu": "15", "memory": "61Gi"}
    assert plans["gpu-a100-4"].spec["devicesPerNode"][0]["attributes"]["productName"] == "A100"


def test_cordoned_nodes_are_left_out() -> None:
    nodes = [node("h0", H100, **gpus(8)), node("h1", H100, cordoned=True, **gpus(8))]
    [plan] = discovery.plans(nodes)
    assert plan.spec["nodeCount"] == 1
    assert discovery.plans([node("h1", H100, cordoned=True, **gpus(8))]) == []


def test_same_gpus_on_other_cpus_are_two_pools_told_apart_by_a_hash() -> None:
    nodes = [node("h0", H100, **gpus(8)), node("h1", H100, cpu="95", **gpus(8))]
    names = [plan.name for plan in discovery.plans(nodes)]
    assert len(set(names)) == 2 and all(n.startswith("gpu-h100-8-") for n in names)


def test_mig_mixed_slices_are_groups_named_for_their_resource() -> None:
    labels = {
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
        "nvidia.com/mig.strategy": "mixed",
        "nvidia.com/mig-1g.5gb.memory": "4864",
        "nvidia.com/mig-3g.20gb.memory": "19968",
    }
    devices = {"nvidia.com/gpu": "1", "nvidia.com/mig-1g.5gb": "7", "nvidia.com/mig-3g.20gb": "2",
               "nvidia.com/mig-2g.10gb": "0"}  # fmt: skip
    [plan] = discovery.plans([node("m0", labels, **devices)])
    valid(plan)
    groups = {g["name"]: g for g in plan.spec["devicesPerNode"]}
    assert sorted(groups) == ["gpu", "mig-1g-5gb", "mig-3g-20gb"]
    assert groups["mig-1g-5gb"]["count"] == 7
    assert groups["mig-1g-5gb"]["attributes"] == {
        "type": "mig",
        "migProfile": "1g.5gb",
        "productName": "A100",
    }
    assert groups["mig-1g-5gb"]["capacity"] == {"memory": "4864Mi"}
    assert discovery.resource_of("mig-1g-5gb") == "nvidia.com/mig-1g.5gb"
    assert discovery.resource_of("gpu") == "nvidia.com/gpu"
    assert plan.name == "mig-a100-10"


def test_mig_single_slices_are_the_gpu_group() -> None:
    labels = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
              "nvidia.com/mig.strategy": "single", "nvidia.com/gpu.memory": "4864"}  # fmt: skip
    [plan] = discovery.plans([node("m0", labels, **gpus(56))])
    valid(plan)
    [group] = plan.spec["devicesPerNode"]
    assert group["name"] == "gpu" and group["count"] == 56
    assert group["attributes"] == {"type": "mig", "migProfile": "1g.5gb", "productName": "A100"}
    assert discovery.resource_of(group["name"]) == "nvidia.com/gpu"


@pytest.mark.parametrize(
    ("profile", "group"),
    [("1g.10gb", "mig-1g-10gb"), ("1g.10gb+me", "mig-1g-10gb-me"), ("7g.80gb", "mig-7g-80gb"),
     ("odd", None)],
)  # fmt: skip
def test_mig_profiles_round_trip_through_group_names(profile: str, group: str | None) -> None:
    assert discovery.group_of_profile(profile) == group
    if group is not None:
        assert discovery.resource_of(group) == f"nvidia.com/mig-{profile}"


def test_gpus_labelled_but_not_in_capacity_count_by_the_label() -> None:
    """A DRA driver publishes ResourceSlices, not capacity; feature discovery still labels."""
    [plan] = discovery.plans([node("h0", H100)])
    assert plan.spec["devicesPerNode"][0]["count"] == 8
