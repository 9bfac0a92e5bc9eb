"""Does a replica fit in a pool right now, and on which nodes and devices?

Accounting is per device and per node: a replica taking 1 of a node's 8 GPUs leaves 7 for
others. Every device a replica gets on a node comes from one device group that matches its
request (a MIG profile is a group like any other); all of a replica's nodes are in one pool.

Within a pool the fit is best-fit: each of the replica's nodes is the one its first device
request leaves the fewest devices free on, preferring nodes already in use to empty ones, so
partly used nodes fill up before new ones are opened.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferplane.policy.placement import demands
from inferplane.policy.placement.state import Node, PoolState

Options = tuple[tuple[int, ...], ...]
"""Per device request of the demand, the pool's device groups (positions) that match it."""


@dataclass(frozen=True, slots=True)
class NodePick:
    """One node of a replica: the group each device request takes its devices from."""

    node: int
    groups: tuple[int, ...]
    """Per device request, the position of the group it draws from."""
    leftover: int
    """Devices the first request's group keeps free on the node after placing."""
    empty: bool
    """True when the node held nothing before."""


@dataclass(frozen=True, slots=True)
class Fit:
    """A way to place one replica in one pool: its nodes, the gang leader first."""

    pool: PoolState
    picks: tuple[NodePick, ...]

    @property
    def leftover(self) -> int:
        return sum(p.leftover for p in self.picks)

    def binpack_key(self) -> tuple[int, int, int, int]:
        """Smaller is tighter: fewest devices left free on the chosen nodes, then the pool's
        own tie-break (`pool_key`)."""
        return self.leftover, *pool_key(self.pool)


def pool_key(pool: PoolState) -> tuple[int, int, int]:
    """Binpack's tie-break between fits that leave as much free: pools already in use, then
    pools with fewer empty nodes, then snapshot order. Known without fitting the pool."""
    return 0 if pool.touched else 1, len(pool.empty), pool.order


def fit_pool(pool: PoolState, options: Options, shape: demands.Shape) -> Fit | None:
    """The tightest placement of one replica in the pool, or None if it does not fit now."""
    counts = tuple(need.count for need in shape.needs)
    found: list[NodePick] = []
    for node in pool.nodes.values():
        if node.cpu_free >= shape.cpu_milli and node.memory_free >= shape.memory_bytes:
            fitted = fit_free(node.free, options, counts)
            if fitted is not None:
                found.append(NodePick(node.index, fitted[0], fitted[1], False))
    if pool.empty and _empty_fits(pool, shape):
        fitted = fit_free([c for _, c in pool.shape.groups], options, counts)
        if fitted is not None:
            # Empty nodes are alike: the first few stand for all of them.
            for index in pool.empty[: shape.nodes]:
                found.append(NodePick(index, fitted[0], fitted[1], True))
    return _choose(pool, found, shape.nodes)


def _empty_fits(pool: PoolState, shape: demands.Shape) -> bool:
    return pool.shape.cpu >= shape.cpu_milli and pool.shape.memory >= shape.memory_bytes


def _choose(pool: PoolState, found: list[NodePick], wanted: int) -> Fit | None:
    if len(found) < wanted:
        return None
    if wanted == 1:
        return Fit(pool, (min(found, key=_node_order),))
    found.sort(key=_node_order)
    return Fit(pool, tuple(found[:wanted]))


def _node_order(pick: NodePick) -> tuple[int, bool, int]:
    return pick.leftover, pick.empty, pick.node


def fit_free(
    free: list[int], options: Options, counts: tuple[int, ...]
) -> tuple[tuple[int, ...], int] | None:
    """The groups each request draws from on a node with `free` devices per group, and what
    the first request's group keeps free; None if the node cannot hold them all."""
    if len(counts) == 1:  # the common case, kept apart because it runs millions of times
        return _fit_one(free, options[0], counts[0])
    if not counts:
        return (), 0
    left = list(free)
    chosen: list[int] = []
    for groups, count in zip(options, counts, strict=True):
        best = _tightest(left, groups, count)
        if best < 0:
            return None
        left[best] -= count
        chosen.append(best)
    return tuple(chosen), left[chosen[0]]


def _fit_one(free: list[int], groups: tuple[int, ...], count: int) -> tuple[tuple[int], int] | None:
    best = _tightest(free, groups, count)
    return None if best < 0 else ((best,), free[best] - count)


def _tightest(free: list[int], groups: tuple[int, ...], count: int) -> int:
    """The matching group with the fewest free devices that still holds `count`; -1 if none."""
    best, best_free = -1, 1 << 30
    for g in groups:
        available = free[g]
        if count <= available < best_free:
            best, best_free = g, available
    return best


def device_indexes(node: Node | None, group: int, count: int, skip: int = 0) -> list[int]:
    """The `count` lowest free device indexes of a group on a node (None: an empty node),
    leaving out the bits in `skip` (devices another request of the same replica takes)."""
    taken = (node.taken[group] if node is not None else 0) | skip
    picked: list[int] = []
    i = 0
    while len(picked) < count:
        if not taken >> i & 1:
            picked.append(i)
        i += 1
    return picked
