"""A Ray cluster's nodes, as `ray.nodes()` describes them, become one Pool per node shape."""

from __future__ import annotations

from typing import Any

from inferplane.agent.runtime.rayruntime import pools
from inferplane.api import fleet


def node(resources: dict[str, Any], *, alive: bool = True) -> dict[str, Any]:
    return {"Alive": alive, "NodeManagerAddress": "10.0.0.1", "Resources": resources}


H100 = {"CPU": 96.0, "GPU": 8.0, "memory": 900.4 * 2**30, "accelerator_type:H100": 1.0,
        "node:10.0.0.1": 1.0, "object_store_memory": 1e9}  # fmt: skip
CPU = {"CPU": 4.0, "memory": 14.9 * 2**30}


def test_nodes_of_one_shape_make_one_pool_counting_only_the_alive() -> None:
    plans = pools.plans_of(
        [node(H100), node({**H100, "memory": 900.9 * 2**30}), node(H100, alive=False)]
    )
    assert [plan.name for plan in plans] == ["ray-h100-8gpu-96cpu-900gi"]
    assert plans[0].spec == {
        "nodeCount": 2,
        "cpu": "96",
        "memory": "900Gi",
        "devicesPerNode": [
            {
                "name": "gpu",
                "count": 8,
                "driver": "gpu.nvidia.com",
                "attributes": {
                    "type": "gpu",
                    "productName": "H100",
                    "rayAcceleratorType": "H100",
                },
            }
        ],
    }
    fleet.PoolSpec.model_validate({**plans[0].spec, "cluster": "eu-1"})


def test_distinct_shapes_make_distinct_pools_gpus_first() -> None:
    plans = pools.plans_of([node(CPU), node(H100), node({**CPU, "CPU": 8.0})])
    assert [(p.name, p.spec["nodeCount"]) for p in plans] == [
        ("ray-h100-8gpu-96cpu-900gi", 1),
        ("ray-cpu-8cpu-14gi", 1),
        ("ray-cpu-4cpu-14gi", 1),
    ]
    assert "devicesPerNode" not in plans[-1].spec


def test_a_gpu_node_without_an_accelerator_type_is_a_plain_gpu_pool() -> None:
    (plan,) = pools.plans_of([node({"CPU": 1.0, "GPU": 1.0, "memory": 2.0 * 2**30})])
    assert plan.name == "ray-gpu-1gpu-1cpu-2gi"
    assert plan.spec["devicesPerNode"][0]["attributes"] == {"type": "gpu"}


def test_hostile_resources_are_ignored_not_reported() -> None:
    weird = {"CPU": float("nan"), "GPU": -3, "memory": "lots", 'accelerator_type:"; drop': 1}
    assert pools.plans_of([node(weird), {"Alive": True, "Resources": "nope"}, {}]) == []
    (plan,) = pools.plans_of([node({"CPU": 0.5, "GPU": True, "accelerator_type:\n": 1.0})])
    assert plan.name == "ray-cpu-05cpu-0gi"
    fleet.PoolSpec.model_validate({**plan.spec, "cluster": "c"})


def test_the_accelerator_of_a_bound_pool_is_found_by_its_object_name() -> None:
    plans = pools.plans_of([node(H100), node(CPU)])
    assert pools.accelerator_of("eu-1-ray-h100-8gpu-96cpu-900gi", plans) == "H100"
    assert pools.accelerator_of("eu-1-ray-cpu-4cpu-14gi", plans) is None
    assert pools.accelerator_of("eu-1-h100", plans) is None
    assert pools.accelerator_of(None, plans) is None
