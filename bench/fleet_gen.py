"""A seeded fleet and a seeded stream of replicas for the scheduler benchmark.

Clusters carry region, provider and tier labels; each has four pools drawn from H100, A100
and L4 nodes and H100 nodes split into MIG slices (1g.10gb, 3g.40gb), some spot, with node
counts and prices that vary. Replicas come from deployments asking for 1-8 GPUs of a model,
a MIG slice or two, or a gang of two 8-GPU nodes, some behind a cluster selector; replicas
of all deployments arrive interleaved, as a busy control plane sees them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from inferplane.api import deployments, fleet
from inferplane.policy.placement import demands

REGIONS = ("eu-west", "us-east", "us-west", "ap-south")
PROVIDERS = {"aws": 1.0, "gcp": 0.95, "azure": 1.05, "onprem": 0.6}


@dataclass(frozen=True)
class PoolKind:
    name: str
    product: str
    count: int
    memory: str
    gpu_price: float
    mig: str = ""


POOL_KINDS = (
    PoolKind("h100", "H100", 8, "80Gi", 12.0),
    PoolKind("a100", "A100", 8, "80Gi", 4.0),
    PoolKind("l4", "L4", 4, "24Gi", 0.8),
    PoolKind("mig1g", "H100", 56, "10Gi", 1.7, mig="1g.10gb"),
    PoolKind("mig3g", "H100", 16, "40Gi", 6.0, mig="3g.40gb"),
)
KIND_WEIGHTS = (3, 3, 3, 1, 1)


def product_is(product: str) -> str:
    return f'device.attributes["gpu.nvidia.com"].productName == "{product}"'


def memory_at_least(amount: str) -> str:
    return f'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("{amount}")) >= 0'


def mig_is(profile: str) -> str:
    return f'device.attributes["gpu.nvidia.com"].migProfile == "{profile}"'


WHOLE_GPU = 'device.attributes["gpu.nvidia.com"].migProfile == ""'


def make_fleet(rng: random.Random, clusters: int) -> tuple[list[fleet.Cluster], list[fleet.Pool]]:
    made_clusters: list[fleet.Cluster] = []
    pools: list[fleet.Pool] = []
    for c in range(clusters):
        name = f"c{c:04d}"
        provider = rng.choice(sorted(PROVIDERS))
        labels = {"region": rng.choice(REGIONS), "provider": provider}
        labels["tier"] = "prod" if rng.random() < 0.6 else "dev"
        phase = "Ready" if rng.random() > 0.01 else "NotReady"
        made_clusters.append(
            fleet.Cluster.model_validate(
                {
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"cordoned": rng.random() < 0.01},
                    "status": {"phase": phase},
                }
            )
        )
        for p in range(4):
            kind = rng.choices(POOL_KINDS, KIND_WEIGHTS)[0]
            pools.append(_pool(rng, f"{kind.name}-{p}", name, kind, PROVIDERS[provider]))
    return made_clusters, pools


def _pool(rng: random.Random, name: str, cluster: str, kind: PoolKind, factor: float) -> fleet.Pool:
    gpus = 8 if kind.mig else kind.count
    attributes: dict[str, Any] = {"productName": kind.product, "migProfile": kind.mig}
    group = {
        "name": "gpu" if not kind.mig else f"mig-{kind.mig.replace('.', '')}",
        "count": kind.count,
        "driver": "gpu.nvidia.com",
        "attributes": attributes,
        "capacity": {"memory": kind.memory},
    }
    spec = {
        "cluster": cluster,
        "nodeCount": rng.randint(2, 10),
        "devicesPerNode": [group],
        "cpu": str(16 * gpus),
        "memory": f"{128 * gpus}Gi",
        "pricePerHour": round(kind.gpu_price * gpus * factor * rng.choice((0.9, 1.0, 1.1)), 2),
        "spot": rng.random() < 0.2,
    }
    return fleet.Pool.model_validate({"metadata": {"name": name}, "spec": spec})


@dataclass(frozen=True)
class Ask:
    """One kind of replica: devices per node, nodes, and the selectors."""

    name: str
    count: int
    selectors: tuple[str, ...]
    nodes: int = 1
    weight: int = 1
    cpu: int = 4
    """CPU cores per device: MIG slices ask for fewer, as their models are smaller."""


ASKS = (
    Ask("h100", 1, (product_is("H100"), WHOLE_GPU), weight=6),
    Ask("h100", 2, (product_is("H100"), WHOLE_GPU), weight=4),
    Ask("h100", 4, (product_is("H100"), WHOLE_GPU, memory_at_least("80Gi")), weight=3),
    Ask("h100", 8, (product_is("H100"), WHOLE_GPU), weight=2),
    Ask("a100", 1, (product_is("A100"),), weight=5),
    Ask("a100", 2, (product_is("A100"), memory_at_least("40Gi")), weight=4),
    Ask("a100", 4, (product_is("A100"),), weight=2),
    Ask("a100", 8, (product_is("A100"),), weight=1),
    Ask("l4", 1, (product_is("L4"),), weight=6),
    Ask("l4", 2, (product_is("L4"),), weight=3),
    Ask("l4", 4, (product_is("L4"),), weight=1),
    Ask("mig", 1, (mig_is("1g.10gb"),), weight=5, cpu=2),
    Ask("mig", 2, (mig_is("1g.10gb"),), weight=2, cpu=2),
    Ask("mig", 1, (mig_is("3g.40gb"),), weight=3),
    Ask("h100", 8, (product_is("H100"), WHOLE_GPU), nodes=2, weight=1),
)
SELECTORS = (({}, 7), ({"region": "eu-west"}, 1), ({"tier": "prod"}, 2))


def make_demands(
    rng: random.Random, replicas: int, *, strategies: tuple[str, ...] = ("binpack",)
) -> list[demands.Demand]:
    """Deployments of 1-40 replicas each, their replicas shuffled together."""
    out: list[demands.Demand] = []
    d = 0
    while len(out) < replicas:
        ask = rng.choices(ASKS, [a.weight for a in ASKS])[0]
        labels = rng.choices([s for s, _ in SELECTORS], [w for _, w in SELECTORS])[0]
        deployment = _deployment(f"d{d:04d}", ask, labels, rng.choice(strategies))
        for r in range(min(rng.randint(1, 40), replicas - len(out))):
            out.append(demands.demand_for(deployment, f"d{d:04d}-{r}"))
        d += 1
    rng.shuffle(out)
    return out


def _deployment(
    name: str, ask: Ask, labels: dict[str, str], strategy: str
) -> deployments.Deployment:
    request = {"name": ask.name, "count": ask.count, "selectors": list(ask.selectors)}
    spec = {
        "model": "llama",
        "resources": {
            "devices": [request],
            "nodes": ask.nodes,
            "cpu": str(ask.cpu * ask.count),
            "memory": f"{8 * ask.cpu * ask.count}Gi",
        },
        "placement": {"clusterSelector": {"matchLabels": labels}, "strategy": strategy},
    }
    return deployments.Deployment.model_validate(
        {"metadata": {"name": name, "namespace": "bench"}, "spec": spec}
    )
