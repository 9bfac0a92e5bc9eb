"""What one replica asks of the fleet, read once from its deployment into plain values.

A Demand is hashable and split in two: `shape` (everything the static filters read, so that
thousands of replicas of one deployment share one filtering pass) and the replica's identity
(its name, its deployment for spreading, its model for the cached strategy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from inferplane.api import deployments, selectors, values

UNLIMITED = 1 << 62
"""Stands for a CPU or memory capacity a pool does not account."""


@dataclass(frozen=True)
class DeviceNeed:
    """One device request: how many devices per node, and the selectors they must satisfy."""

    name: str
    count: int
    selectors: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.count}× {self.name}"


@dataclass(frozen=True)
class Shape:
    """The part of a demand the filters read; replicas of one deployment share it."""

    needs: tuple[DeviceNeed, ...] = ()
    nodes: int = 1
    """Nodes per replica; more than one is a gang that must fit in one pool."""
    cpu_milli: int = 0
    """CPU per node in millicores; 0 when the deployment does not ask."""
    memory_bytes: int = 0
    """Memory per node in bytes; 0 when the deployment does not ask."""
    cluster_selector: selectors.Selector = field(default_factory=selectors.Selector)
    max_price: float | None = None
    """Most one replica may cost per hour (nodes × the pool's node price)."""
    allow_spot: bool = True

    def describe(self) -> str:
        """`2× h100, 8 CPU, 64Gi` for messages; a gang adds `on each of 2 nodes`."""
        parts = [need.describe() for need in self.needs]
        if self.cpu_milli:
            parts.append(f"{_cpu_text(self.cpu_milli)} CPU")
        if self.memory_bytes:
            parts.append(_bytes_text(self.memory_bytes))
        text = ", ".join(parts) or "a node"
        return f"{text} on each of {self.nodes} nodes" if self.nodes > 1 else text


@dataclass(frozen=True)
class ModelRef:
    """The model version a replica loads, to find clusters that already cache it."""

    namespace: str
    name: str
    version: str | None = None


@dataclass(frozen=True)
class Demand:
    """One replica to place."""

    replica: str
    """namespace/name of the replica."""
    shape: Shape
    deployment: str = ""
    """namespace/name of its deployment: spreading counts the deployment's replicas."""
    strategy: deployments.Strategy = "binpack"
    spread_label: str | None = None
    model: ModelRef | None = None


def shape_of(spec: deployments.DeploymentSpec) -> Shape:
    """The filterable part of a deployment's spec."""
    resources, placement = spec.resources, spec.placement
    needs = tuple(DeviceNeed(r.name, r.count, tuple(r.selectors)) for r in resources.devices)
    return Shape(
        needs=needs,
        nodes=resources.nodes,
        cpu_milli=cpu_milli(resources.cpu) if resources.cpu else 0,
        memory_bytes=memory_bytes(resources.memory) if resources.memory else 0,
        cluster_selector=placement.clusterSelector.selector(),
        max_price=placement.maxPricePerHour,
        allow_spot=placement.allowSpot,
    )


def demand_for(
    deployment: deployments.Deployment, replica: str, *, model_version: str | None = None
) -> Demand:
    """The demand of one replica (by name) of a deployment."""
    namespace = deployment.metadata.namespace or "default"
    spec = deployment.spec
    version = model_version or spec.modelVersion
    return Demand(
        replica=f"{namespace}/{replica}",
        shape=shape_of(spec),
        deployment=f"{namespace}/{deployment.metadata.name}",
        strategy=spec.placement.strategy,
        spread_label=spec.placement.spreadLabel,
        model=ModelRef(namespace, spec.model, version),
    )


def cpu_milli(quantity: str) -> int:
    """A CPU quantity in whole millicores, rounded up: a request never gets less than it asked."""
    return math.ceil(values.parse_quantity_exact(quantity) * 1000)


def memory_bytes(quantity: str) -> int:
    return math.ceil(values.parse_quantity_exact(quantity))


def capacity_milli(quantity: str | None) -> int:
    """A node's CPU in millicores, rounded down; UNLIMITED when not accounted."""
    return math.floor(values.parse_quantity_exact(quantity) * 1000) if quantity else UNLIMITED


def capacity_bytes(quantity: str | None) -> int:
    return math.floor(values.parse_quantity_exact(quantity)) if quantity else UNLIMITED


def _cpu_text(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _bytes_text(amount: int) -> str:
    for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if amount % size == 0:
            return f"{amount // size}{suffix}"
    return str(amount)
