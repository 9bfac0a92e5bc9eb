"""Small fleets and deployments for the placement tests, built as users would write them."""

from __future__ import annotations

from typing import Any

from inferplane.api import deployments, fleet
from inferplane.policy.placement import demands, scheduler, state

NVIDIA = "gpu.nvidia.com"


def product(name: str) -> str:
    return f'device.attributes["{NVIDIA}"].productName == "{name}"'


def cluster(
    name: str,
    *,
    phase: str = "Ready",
    cordoned: bool = False,
    runtime: str = "kubernetes",  # GPU fleets run on a scheduler: process runs no gangs
    **labels: str,
) -> fleet.Cluster:
    return fleet.Cluster.model_validate(
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {"cordoned": cordoned, "runtime": runtime},
            "status": {"phase": phase},
        }
    )


def gpus(
    product_name: str = "H100",
    count: int = 8,
    *,
    name: str = "gpu",
    memory: str = "80Gi",
    **attributes: Any,
) -> dict[str, Any]:
    """A device group of whole GPUs (or MIG slices, with migProfile=...)."""
    return {
        "name": name,
        "count": count,
        "driver": NVIDIA,
        "attributes": {"productName": product_name, **attributes},
        "capacity": {"memory": memory},
    }


def pool(
    name: str, cluster_name: str, *groups: dict[str, Any], nodes: int = 2, **spec: Any
) -> fleet.Pool:
    body = {"cluster": cluster_name, "nodeCount": nodes, "devicesPerNode": list(groups or [gpus()])}
    return fleet.Pool.model_validate({"metadata": {"name": name}, "spec": {**body, **spec}})


def deployment(
    name: str = "chat",
    *,
    count: int = 1,
    selectors: tuple[str, ...] = (),
    request: str = "gpu",
    nodes: int = 1,
    replicas: int = 1,
    cpu: str | None = None,
    memory: str | None = None,
    **placement: Any,
) -> deployments.Deployment:
    devices = [{"name": request, "count": count, "selectors": list(selectors)}] if count else []
    spec = {
        "model": "llama",
        "replicas": replicas,
        "resources": {"devices": devices, "nodes": nodes, "cpu": cpu, "memory": memory},
        "placement": placement,
    }
    return deployments.Deployment.model_validate(
        {"metadata": {"name": name, "namespace": "team-a"}, "spec": spec}
    )


def demand(dep: deployments.Deployment, index: int = 0) -> demands.Demand:
    return demands.demand_for(dep, f"{dep.metadata.name}-{index}")


def planner(
    clusters: list[fleet.Cluster], pools: list[fleet.Pool], **extra: Any
) -> scheduler.Scheduler:
    return scheduler.Scheduler(state.Snapshot(clusters, pools, **extra))
