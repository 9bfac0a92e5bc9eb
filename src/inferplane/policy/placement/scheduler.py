"""The fleet scheduler: two levels, as in Modelplane, with per-device accounting.

Build a `Scheduler` from a `Snapshot`; `place(demand)` filters clusters (selector, Ready, not
cordoned), then their pools (spot, price, gang size, device selectors, node size, free
capacity now), lets the deployment's strategy choose among the survivors, and returns a
`Decision`: a `Scheduled` binding, or `Unschedulable` with a reason per cluster. A placed
replica's devices, CPU and memory are reserved in the scheduler's own books at once, so a
batch of placements never hands out a device twice; the caller writes each binding into
the Pool's status (`bindings.allocate`) with optimistic concurrency.

No clock, no I/O: the same object runs in the control plane, the dry run, the simulator and
the benchmark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from inferplane.api import fleet
from inferplane.policy.placement import candidates, reasons, state, strategies
from inferplane.policy.placement.bindings import AllocationError
from inferplane.policy.placement.candidates import Allowed, Candidates
from inferplane.policy.placement.decisions import (
    Binding,
    Decision,
    DeviceSlot,
    Scheduled,
)
from inferplane.policy.placement.demands import Demand, ModelRef, Shape
from inferplane.policy.placement.fits import Fit, device_indexes, fit_pool
from inferplane.policy.placement.index import FreeIndex
from inferplane.policy.placement.state import PoolState, Snapshot

SEARCH_FROM = 32
"""Below this many pools, fitting each one beats walking the free-capacity buckets."""


class Scheduler:
    """Places replicas on one snapshot of the fleet and keeps the books of what it placed."""

    def __init__(self, snapshot: Snapshot, *, search_from: int = SEARCH_FROM) -> None:
        self.search_from = search_from
        """Pools from which `best` walks the buckets instead of fitting each (tests set 0)."""
        self.clusters: dict[str, fleet.Cluster] = {
            c.metadata.name: c for c in sorted(snapshot.clusters, key=lambda c: c.metadata.name)
        }
        self.pools: dict[tuple[str, str], PoolState] = {}
        self.by_cluster: dict[str, list[PoolState]] = {}
        self.index = FreeIndex()
        ordered = sorted(snapshot.pools, key=lambda p: (p.spec.cluster, p.metadata.name))
        for order, pool in enumerate(ordered):
            self._add_pool(state.pool_state(pool, order))
        self.caches = tuple(snapshot.caches)
        self.peers: dict[str, Counter[str]] = {}
        for replica in snapshot.replicas:
            if replica.spec.cluster is not None:
                owner = f"{replica.metadata.namespace or 'default'}/{replica.spec.deployment}"
                self.peers.setdefault(owner, Counter())[replica.spec.cluster] += 1
        self._found: dict[Shape, Candidates] = {}
        self._cached: dict[ModelRef | None, frozenset[str]] = {}

    def _add_pool(self, pool: PoolState) -> None:
        self.pools[pool.key] = pool
        self.by_cluster.setdefault(pool.cluster, []).append(pool)
        self.index.add(pool)

    # -- deciding -----------------------------------------------------------------------------

    def place(self, demand: Demand) -> Decision:
        """Decide, and reserve what a Scheduled decision binds."""
        decision = self.decide(demand)
        if isinstance(decision, Scheduled):
            self.reserve(decision.binding, replica=demand.replica, deployment=demand.deployment)
        return decision

    def decide(self, demand: Demand) -> Decision:
        """Where the replica would go now, reserving nothing."""
        found = self.candidates(demand.shape)
        choice = strategies.STRATEGIES[demand.strategy].choose(self, demand, found)
        if choice is None:
            return reasons.unschedulable(demand, self.clusters, self.by_cluster)
        return Scheduled(demand.replica, binding_for(choice.fit, demand.shape), choice.why)

    def candidates(self, shape: Shape) -> Candidates:
        """The pools a shape passes every static filter of; computed once per shape."""
        found = self._found.get(shape)
        if found is None:
            found = self._found[shape] = candidates.find(shape, self.clusters, self.by_cluster)
        return found

    def rank(self, demand: Demand) -> list[tuple[tuple[Any, ...], Fit]]:
        """Every pool the replica fits in now, best first by the strategy's plain definition.

        Slow (it fits every candidate); for explanations and for checking `decide`."""
        strategy = strategies.STRATEGIES[demand.strategy]
        found = self.candidates(demand.shape)
        fitted = [fit_pool(p, o, demand.shape) for p, o in found.allowed.items()]
        keyed = [(strategy.key(self, demand, f), f) for f in fitted if f is not None]
        return sorted(keyed, key=lambda item: item[0])

    # -- strategies.Context -------------------------------------------------------------------

    def best(self, demand: Demand, found: Candidates, allowed: Allowed) -> Fit | None:
        shape = demand.shape
        if not shape.needs or len(allowed) < self.search_from:
            fits = (fit_pool(p, o, shape) for p, o in allowed.items())
            return min((f for f in fits if f is not None), key=Fit.binpack_key, default=None)
        return self.index.search(
            found.classes,
            count=shape.needs[0].count,
            others=sum(need.count for need in shape.needs[1:]),
            nodes=shape.nodes,
            allowed=allowed,
            evaluate=lambda pool: fit_pool(pool, allowed[pool], shape),
        )

    def cached_clusters(self, model: ModelRef | None) -> frozenset[str]:
        if model not in self._cached:
            self._cached[model] = ready_caches(self.caches, model)
        return self._cached[model]

    def spread_counts(self, demand: Demand) -> Mapping[str, int]:
        counts: Counter[str] = Counter()
        for cluster, n in self.peers.get(demand.deployment, Counter()).items():
            if n > 0:
                counts[candidates.domain(cluster, demand.spread_label, self.clusters)] += n
        return counts

    # -- the books ----------------------------------------------------------------------------

    def reserve(self, binding: Binding, *, replica: str, deployment: str = "") -> None:
        """Take what the binding names; refuse (AllocationError) anything already taken."""
        pool = self._pool(binding)
        _check_free(pool, binding)
        for index in binding.nodes:
            node = pool.node(index)
            node.cpu_free -= binding.cpu_milli
            node.memory_free -= binding.memory_bytes
            node.replicas.append(replica)
        for slot in binding.devices:
            node = pool.nodes[slot.node]
            g = pool.group_names.index(slot.group)
            for i in slot.indexes:
                node.taken[g] |= 1 << i
            node.free[g] -= len(slot.indexes)
        self.index.refresh(pool)
        if deployment:
            self.peers.setdefault(deployment, Counter())[binding.cluster] += 1

    def release(self, binding: Binding, *, replica: str, deployment: str = "") -> None:
        """Give back what `reserve` took for the replica (a deleted or moved replica)."""
        pool = self._pool(binding)
        for slot in binding.devices:
            node = pool.nodes.get(slot.node)
            if node is None or replica not in node.replicas:
                continue
            g = pool.group_names.index(slot.group)
            for i in slot.indexes:
                if node.taken[g] >> i & 1:
                    node.taken[g] &= ~(1 << i)
                    node.free[g] += 1
        for index in binding.nodes:
            node = pool.nodes.get(index)
            if node is not None and replica in node.replicas:
                node.replicas.remove(replica)
                node.cpu_free += binding.cpu_milli
                node.memory_free += binding.memory_bytes
                pool.settle(node)
        self.index.refresh(pool)
        if deployment and self.peers.get(deployment, Counter())[binding.cluster] > 0:
            self.peers[deployment][binding.cluster] -= 1

    def _pool(self, binding: Binding) -> PoolState:
        pool = self.pools.get((binding.cluster, binding.pool))
        if pool is None:
            raise AllocationError(f"no pool {binding.cluster}/{binding.pool} in the snapshot")
        return pool


def _check_free(pool: PoolState, binding: Binding) -> None:
    for index in binding.nodes:
        if index >= pool.shape.node_count:
            raise AllocationError(f"pool {pool.name} has no node {index}")
        node = pool.nodes.get(index)
        cpu = node.cpu_free if node else pool.shape.cpu
        memory = node.memory_free if node else pool.shape.memory
        if cpu < binding.cpu_milli or memory < binding.memory_bytes:
            raise AllocationError(f"node {index} of {pool.name} lacks CPU or memory")
    for slot in binding.devices:
        node = pool.nodes.get(slot.node)
        if slot.node not in binding.nodes:
            raise AllocationError(f"devices on node {slot.node}, which the binding does not hold")
        if slot.group not in pool.group_names:
            raise AllocationError(f"pool {pool.name} has no device group {slot.group}")
        g = pool.group_names.index(slot.group)
        count = pool.shape.groups[g][1]
        for i in slot.indexes:
            if not 0 <= i < count or (node is not None and node.taken[g] >> i & 1):
                raise AllocationError(f"{slot.group} {i} on node {slot.node} is not free")


def binding_for(fit: Fit, shape: Shape) -> Binding:
    """The concrete devices of a fit: on each node, the lowest free indexes of each group."""
    pool = fit.pool
    slots: list[DeviceSlot] = []
    for pick in fit.picks:
        node = pool.nodes.get(pick.node)
        skip: dict[int, int] = {}  # devices already given to an earlier request, per group
        for need, g in zip(shape.needs, pick.groups, strict=True):
            indexes = device_indexes(node, g, need.count, skip.get(g, 0))
            for i in indexes:
                skip[g] = skip.get(g, 0) | 1 << i
            slots.append(DeviceSlot(need.name, pool.group_names[g], pick.node, tuple(indexes)))
    return Binding(
        cluster=pool.cluster,
        pool=pool.name,
        nodes=tuple(p.node for p in fit.picks),
        devices=tuple(slots),
        cpu_milli=shape.cpu_milli,
        memory_bytes=shape.memory_bytes,
    )


def ready_caches(caches: tuple[fleet.ModelCache, ...], model: ModelRef | None) -> frozenset[str]:
    """Clusters where a ModelCache of the model's version is Ready.

    A cache or a demand that names no version matches any: both then mean "the version
    deployments resolve to by default"."""
    if model is None:
        return frozenset()
    ready: set[str] = set()
    for cache in caches:
        spec = cache.spec
        if (spec.modelNamespace, spec.model) != (model.namespace, model.name):
            continue
        if spec.modelVersion and model.version and spec.modelVersion != model.version:
            continue
        ready.update(c.cluster for c in cache.status.clusters if c.phase == "Ready")
    return frozenset(ready)
