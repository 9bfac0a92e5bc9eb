"""The scheduler's view of the fleet: a snapshot in, free capacity per node and device out.

`Snapshot` is what a caller hands in (Clusters, Pools with their allocations, ModelCaches,
bound Replicas). `PoolState` is the bookkeeping built from one Pool: which device of which
group on which node is taken, and how much CPU and memory each node has left. Only nodes
with something on them are materialised; empty nodes are a sorted list of indexes, so a pool
of a thousand idle nodes costs a list, not a thousand objects.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from inferplane.api import fleet, replicas
from inferplane.policy import clusters, devices
from inferplane.policy.placement import demands


@dataclass(frozen=True)
class Snapshot:
    """Everything the scheduler reads, as of one moment."""

    clusters: Sequence[fleet.Cluster]
    pools: Sequence[fleet.Pool]
    caches: Sequence[fleet.ModelCache] = ()
    replicas: Sequence[replicas.Replica] = ()
    """Bound replicas; spreading counts them per deployment and cluster."""


@dataclass(eq=False, slots=True)
class Node:
    """One node of a pool with something placed on it."""

    index: int
    free: list[int]
    """Free devices per device group (by the group's position in the pool)."""
    taken: list[int]
    """Taken device indexes per group, as a bit mask (bit i: device i)."""
    cpu_free: int
    memory_free: int
    replicas: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PoolShape:
    """What the static filters read of a pool; pools of one shape pass or fail together."""

    groups: tuple[tuple[devices.GroupKey, int], ...]
    """(what a selector sees, devices per node) for each device group."""
    cpu: int
    memory: int
    node_count: int


@dataclass(eq=False)
class PoolState:
    """Free capacity of one pool, node by node. Compared by identity (a dict key)."""

    cluster: str
    name: str
    order: int
    """Position in the snapshot, by (cluster, name): the last tie-break, for determinism."""
    price: float
    spot: bool
    shape: PoolShape
    group_names: tuple[str, ...]
    nodes: dict[int, Node]
    """Nodes with something on them, by index."""
    empty: list[int]
    """Indexes of nodes with nothing on them, ascending."""
    classes: tuple[int, ...] = ()
    """Per group, the id of its class (group key and count) in the free-capacity index."""

    @property
    def key(self) -> tuple[str, str]:
        return self.cluster, self.name

    @property
    def touched(self) -> bool:
        return bool(self.nodes)

    def node(self, index: int) -> Node:
        """The node, materialised (taken off the empty list) if it was empty."""
        found = self.nodes.get(index)
        if found is not None:
            return found
        position = bisect.bisect_left(self.empty, index)
        if position == len(self.empty) or self.empty[position] != index:
            raise KeyError(f"pool {self.name} has no node {index}")
        del self.empty[position]
        shape = self.shape
        fresh = Node(
            index, [c for _, c in shape.groups], [0] * len(shape.groups), shape.cpu, shape.memory
        )
        self.nodes[index] = fresh
        return fresh

    def settle(self, node: Node) -> None:
        """Put a node that no longer holds anything back on the empty list."""
        if node.replicas or any(node.taken):
            return
        del self.nodes[node.index]
        bisect.insort(self.empty, node.index)

    def devices_used(self) -> int:
        full = [c for _, c in self.shape.groups]
        return sum(c - f for n in self.nodes.values() for c, f in zip(full, n.free, strict=True))

    def devices_total(self) -> int:
        return self.shape.node_count * sum(c for _, c in self.shape.groups)


def pool_state(pool: fleet.Pool, order: int) -> PoolState:
    """Bookkeeping for one Pool, its status allocations applied."""
    spec = pool.spec
    shape = PoolShape(
        groups=tuple((devices.group_key(g), g.count) for g in spec.devicesPerNode),
        cpu=demands.capacity_milli(spec.cpu),
        memory=demands.capacity_bytes(spec.memory),
        node_count=spec.nodeCount,
    )
    state = PoolState(
        cluster=spec.cluster,
        name=pool.metadata.name,
        order=order,
        price=spec.pricePerHour,
        spot=spec.spot,
        shape=shape,
        group_names=tuple(g.name for g in spec.devicesPerNode),
        nodes={},
        empty=list(range(spec.nodeCount)),
    )
    for allocation in pool.status.nodes:
        if allocation.index < spec.nodeCount:  # a pool that shrank keeps no ghost nodes
            _load(state, allocation)
    return state


def _load(state: PoolState, allocation: fleet.NodeAllocation) -> None:
    node = state.node(allocation.index)
    for group, indexes in allocation.devices.items():
        if group not in state.group_names:
            continue  # a group removed from the spec: nothing left to account
        g = state.group_names.index(group)
        count = state.shape.groups[g][1]
        for i in indexes:
            if 0 <= i < count and not node.taken[g] >> i & 1:
                node.taken[g] |= 1 << i
                node.free[g] -= 1
    node.cpu_free -= demands.cpu_milli(allocation.cpu)
    node.memory_free -= demands.memory_bytes(allocation.memory)
    node.replicas.extend(allocation.replicas)
    state.settle(node)


def schedulable(cluster: fleet.Cluster) -> str | None:
    """Why no new replica may go to the cluster, or None when one may."""
    if cluster.spec.cordoned or cluster.status.phase == "Cordoned":
        return "cordoned"
    if not clusters.phase_is_live(cluster.status.phase):
        return "not-ready"
    return None
