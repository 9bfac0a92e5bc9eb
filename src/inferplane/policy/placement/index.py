"""Free-capacity buckets: find the tightest pool without looking at every pool.

Device groups are sorted into classes (what a selector sees of them, and how many per node).
For each class the index keeps, for each free count f, the pools that have a node in use with
exactly f devices of that class free, and, apart, the pools with empty nodes ordered by
(already in use first, fewest empty nodes). Binpack asks for the smallest f at or above what a
replica needs: it walks the buckets upwards, fits the first pools it meets exactly, and stops
as soon as nothing further up can be tighter. A placement touches one pool, so keeping the
buckets current costs one pool's worth of work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferplane.policy import devices
from inferplane.policy.placement.fits import Fit
from inferplane.policy.placement.state import PoolState

Membership = tuple[Any, ...]
"""("level", class, free) or ("empty", class, (untouched, empty nodes)), one bucket's key."""


@dataclass
class FreeIndex:
    """Pools by the free devices of their nodes, per class of device group."""

    classes: dict[tuple[devices.GroupKey, int], int] = field(default_factory=dict)
    counts: list[int] = field(default_factory=list)
    """Devices per node of each class."""
    levels: list[list[dict[PoolState, None]]] = field(default_factory=list)
    """levels[class][f]: pools with a node in use that has exactly f devices of the class free.
    Dicts are ordered sets: iteration order is insertion order, so runs are reproducible."""
    empties: list[dict[tuple[int, int], dict[PoolState, None]]] = field(default_factory=list)
    """empties[class][(untouched, empty nodes)]: pools with empty nodes."""
    members: dict[PoolState, set[Membership]] = field(default_factory=dict)

    def add(self, pool: PoolState) -> None:
        """Index a new pool: give its groups their classes and file it in its buckets."""
        pool.classes = tuple(self._class_of(group) for group in pool.shape.groups)
        self.members[pool] = set()
        self.refresh(pool)

    def _class_of(self, group: tuple[devices.GroupKey, int]) -> int:
        if group not in self.classes:
            self.classes[group] = len(self.counts)
            self.counts.append(group[1])
            self.levels.append([{} for _ in range(group[1] + 1)])
            self.empties.append({})
        return self.classes[group]

    def refresh(self, pool: PoolState) -> None:
        """Re-file a pool after its allocations changed."""
        old, new = self.members[pool], _memberships(pool)
        for key in old - new:
            bucket = self._bucket(key)
            bucket.pop(pool, None)
            if not bucket and key[0] == "empty":
                del self.empties[key[1]][key[2]]  # keeps the sorted walk over keys short
        for key in new - old:
            self._bucket(key)[pool] = None
        self.members[pool] = new

    def _bucket(self, key: Membership) -> dict[PoolState, None]:
        if key[0] == "level":
            return self.levels[key[1]][key[2]]
        return self.empties[key[1]].setdefault(key[2], {})

    def search(
        self,
        classes: tuple[int, ...],
        *,
        count: int,
        nodes: int,
        allowed: Mapping[PoolState, Any],
        evaluate: Callable[[PoolState], Fit | None],
    ) -> Fit | None:
        """The tightest fit among `allowed` pools whose groups of `classes` hold `count`.

        Walks leftover L = 0, 1, ... : at L every pool met has no usable node with fewer than
        count + L free, so no fit found later can leave fewer than nodes × L free. A fit that
        reaches that bound ends the walk.
        """
        seen: set[PoolState] = set()
        best: Fit | None = None
        deepest = max((self.counts[c] for c in classes), default=0) - count
        for leftover in range(deepest + 1):
            bound = nodes * leftover
            if best is not None and best.leftover <= bound:
                return best
            for pool in self._at_leftover(classes, count + leftover):
                if pool in seen or pool not in allowed:
                    continue
                seen.add(pool)
                fit = evaluate(pool)
                if fit is not None and (best is None or fit.binpack_key() < best.binpack_key()):
                    best = fit
                    if fit.leftover <= bound:
                        return best
        return best

    def _at_leftover(self, classes: tuple[int, ...], free: int) -> Iterator[PoolState]:
        """Pools with a node having exactly `free` devices of one of the classes free."""
        for c in classes:
            if free > self.counts[c]:
                continue
            # No copies: nothing changes the buckets while a search walks them.
            yield from self.levels[c][free]
            if free == self.counts[c]:
                for key in sorted(self.empties[c]):
                    yield from self.empties[c][key]


def _memberships(pool: PoolState) -> set[Membership]:
    keys: set[Membership] = set()
    for node in pool.nodes.values():
        for c, free in zip(pool.classes, node.free, strict=True):
            if free > 0:
                keys.add(("level", c, free))
    if pool.empty:
        order = (0 if pool.touched else 1, len(pool.empty))
        keys.update(("empty", c, order) for c in set(pool.classes))
    return keys
