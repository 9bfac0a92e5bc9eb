"""What the scheduler answers for one replica: a binding, or why there is none."""

from __future__ import annotations

from dataclasses import dataclass

from inferplane.api import replicas
from inferplane.policy.placement import demands


@dataclass(frozen=True)
class DeviceSlot:
    """Devices of one node given to one device request of the replica."""

    request: str
    group: str
    node: int
    indexes: tuple[int, ...]


@dataclass(frozen=True)
class Binding:
    """Where a replica goes: a pool of a cluster, its nodes (gang leader first), its devices,
    and the CPU and memory it takes on each of those nodes."""

    cluster: str
    pool: str
    nodes: tuple[int, ...]
    devices: tuple[DeviceSlot, ...] = ()
    cpu_milli: int = 0
    memory_bytes: int = 0

    def replica_fields(self) -> dict[str, object]:
        """The fields of a Replica's spec that record the binding (cluster, pool, nodes,
        devices), ready for `spec.model_copy(update=...)` or a merge patch."""
        return {
            "cluster": self.cluster,
            "pool": self.pool,
            "nodes": list(self.nodes),
            "devices": [
                replicas.DeviceAllocation(
                    request=s.request, group=s.group, node=s.node, indexes=list(s.indexes)
                )
                for s in self.devices
            ],
        }


def binding_of(spec: replicas.ReplicaSpec) -> Binding | None:
    """The binding a bound replica records (to release it), or None while it is Pending."""
    if spec.cluster is None or spec.pool is None:
        return None
    resources = spec.resources
    return Binding(
        cluster=spec.cluster,
        pool=spec.pool,
        nodes=tuple(spec.nodes),
        devices=tuple(
            DeviceSlot(d.request, d.group, d.node, tuple(d.indexes)) for d in spec.devices
        ),
        cpu_milli=demands.cpu_milli(resources.cpu) if resources.cpu else 0,
        memory_bytes=demands.memory_bytes(resources.memory) if resources.memory else 0,
    )


@dataclass(frozen=True)
class Scheduled:
    """The replica fits: bind it here."""

    replica: str
    binding: Binding
    why: str
    """The strategy's reason for this pool, for people: `binpack: leaves 0 of 8 gpu free`."""


@dataclass(frozen=True)
class Unschedulable:
    """No pool fits the replica now; one reason per cluster, counted."""

    replica: str
    clusters: int
    """How many clusters the fleet has; the counts of `reasons` add up to it."""
    reasons: tuple[tuple[str, int], ...]
    """(reason, clusters) pairs, most common first."""
    errors: tuple[str, ...] = ()
    """Selector evaluation errors met while filtering, e.g. a missing attribute."""

    @property
    def message(self) -> str:
        """`0/5 clusters available: 3 did not match the cluster selector, 2 had no pool...`"""
        listed = ", ".join(f"{count} {text}" for text, count in self.reasons)
        head = f"0/{self.clusters} clusters available"
        return f"{head}: {listed}" if listed else f"{head}: the fleet has no clusters"


Decision = Scheduled | Unschedulable
