"""A binding written into a Pool's status: the allocation the controller stores.

The controller reads a Pool (resourceVersion R), schedules against it, applies the binding
here and writes the result back with R. If another scheduler wrote the pool in between, the
store refuses the write (409 Conflict) and the loser re-reads and schedules again: that, not
a lock, is what keeps two schedulers from handing out the same device. `allocate` checks the
binding against the pool it is given as well, so a binding from a stale view is refused here
too, never written as an overcommit.
"""

from __future__ import annotations

from inferplane.api import fleet
from inferplane.policy.placement import demands
from inferplane.policy.placement.decisions import Binding


class AllocationError(ValueError):
    """The binding does not fit the pool as given: the view it was made from is stale."""


def allocate(pool: fleet.Pool, binding: Binding, *, replica: str) -> fleet.Pool:
    """A copy of the pool with the replica's devices, CPU and memory allocated."""
    _check_target(pool, binding)
    nodes = {n.index: n.model_copy(deep=True) for n in pool.status.nodes}
    for index in binding.nodes:
        node = nodes.setdefault(index, fleet.NodeAllocation(index=index))
        _take_resources(pool.spec, node, binding)
        if replica in node.replicas:
            raise AllocationError(f"{replica} is already placed on node {index}")
        node.replicas.append(replica)
    for slot in binding.devices:
        _take_devices(pool.spec, nodes[slot.node], slot.group, slot.indexes)
    return _with_nodes(pool, nodes)


def release(pool: fleet.Pool, binding: Binding, *, replica: str) -> fleet.Pool:
    """A copy of the pool with everything the replica held freed; unknown holdings are
    skipped, so releasing twice is harmless."""
    nodes = {n.index: n.model_copy(deep=True) for n in pool.status.nodes}
    for index in binding.nodes:
        node = nodes.get(index)
        if node is None or replica not in node.replicas:
            continue
        node.replicas.remove(replica)
        node.cpu = _quantity(max(0, demands.cpu_milli(node.cpu) - binding.cpu_milli), milli=True)
        memory = max(0, demands.memory_bytes(node.memory) - binding.memory_bytes)
        node.memory = _quantity(memory, milli=False)
        for slot in binding.devices:
            if slot.node == index:
                held = node.devices.get(slot.group, [])
                node.devices[slot.group] = [i for i in held if i not in slot.indexes]
    return _with_nodes(pool, nodes)


def _check_target(pool: fleet.Pool, binding: Binding) -> None:
    if (pool.spec.cluster, pool.metadata.name) != (binding.cluster, binding.pool):
        raise AllocationError(f"the binding is for {binding.cluster}/{binding.pool}")
    for index in binding.nodes:
        if not 0 <= index < pool.spec.nodeCount:
            raise AllocationError(f"pool {binding.pool} has no node {index}")


def _take_resources(spec: fleet.PoolSpec, node: fleet.NodeAllocation, binding: Binding) -> None:
    cpu = demands.cpu_milli(node.cpu) + binding.cpu_milli
    memory = demands.memory_bytes(node.memory) + binding.memory_bytes
    if cpu > demands.capacity_milli(spec.cpu) or memory > demands.capacity_bytes(spec.memory):
        raise AllocationError(f"node {node.index} has too little CPU or memory left")
    node.cpu = _quantity(cpu, milli=True)
    node.memory = _quantity(memory, milli=False)


def _take_devices(
    spec: fleet.PoolSpec, node: fleet.NodeAllocation, group: str, indexes: tuple[int, ...]
) -> None:
    counts = {g.name: g.count for g in spec.devicesPerNode}
    if group not in counts:
        raise AllocationError(f"the pool has no device group {group!r}")
    held = node.devices.setdefault(group, [])
    for i in indexes:
        if not 0 <= i < counts[group]:
            raise AllocationError(f"{group} {i} does not exist on node {node.index}")
        if i in held:
            raise AllocationError(f"{group} {i} on node {node.index} is already allocated")
        held.append(i)
    held.sort()


def _with_nodes(pool: fleet.Pool, nodes: dict[int, fleet.NodeAllocation]) -> fleet.Pool:
    """The pool with these allocations, nodes left holding nothing dropped."""
    kept = [n for _, n in sorted(nodes.items()) if n.replicas or any(n.devices.values())]
    for node in kept:
        node.devices = {g: i for g, i in node.devices.items() if i}
    used = sum(1 for n in kept if n.index < pool.spec.nodeCount)
    status = pool.status.model_copy(
        update={"nodes": kept, "freeNodes": max(0, pool.spec.nodeCount - used)}
    )
    return pool.model_copy(update={"status": status})


def _quantity(amount: int, *, milli: bool) -> str:
    """An amount as a quantity string: CPU in millicores (`1500m`, `2`), memory in bytes."""
    if milli:
        return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"
    return str(amount)
