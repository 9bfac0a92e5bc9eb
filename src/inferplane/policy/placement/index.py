"""Free-capacity buckets: find the tightest pool without looking at every pool.

Device groups are sorted into classes (what a selector sees of them, and how many per node).
For each class the index keeps, for each free count f, the pools that have a node with exactly
f devices of that class free (an empty node has them all free), sorted by binpack's tie-break
(`fits.pool_key`). Binpack asks for the smallest f at or above what a replica needs: it walks
the buckets upwards, fits the pools it meets, and stops as soon as nothing further up can be
tighter or win the tie-break, so it chooses what fitting every pool would. A placement touches
one pool, so keeping the buckets current costs one pool's worth of work.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferplane.policy import devices
from inferplane.policy.placement.fits import Fit, pool_key
from inferplane.policy.placement.state import PoolState

PoolKey = tuple[int, int, int]
Bucket = list[tuple[PoolKey, PoolState]]
"""Pools ascending by `pool_key`, each with the key it was filed under (keys are unique)."""


@dataclass
class FreeIndex:
    """Pools by the free devices of their nodes, per class of device group."""

    classes: dict[tuple[devices.GroupKey, int], int] = field(default_factory=dict)
    counts: list[int] = field(default_factory=list)
    """Devices per node of each class."""
    levels: list[list[Bucket]] = field(default_factory=list)
    """levels[class][f]: pools with a node that has exactly f devices of the class free."""
    members: dict[PoolState, tuple[PoolKey, set[tuple[int, int]]]] = field(default_factory=dict)
    """Per pool, the key it is filed under and its (class, free) buckets."""

    def add(self, pool: PoolState) -> None:
        """Index a new pool: give its groups their classes and file it in its buckets."""
        pool.classes = tuple(self._class_of(group) for group in pool.shape.groups)
        self.members[pool] = (pool_key(pool), set())
        self.refresh(pool)

    def _class_of(self, group: tuple[devices.GroupKey, int]) -> int:
        if group not in self.classes:
            self.classes[group] = len(self.counts)
            self.counts.append(group[1])
            self.levels.append([[] for _ in range(group[1] + 1)])
        return self.classes[group]

    def refresh(self, pool: PoolState) -> None:
        """Re-file a pool after its allocations changed."""
        (old_key, old), new_key, new = self.members[pool], pool_key(pool), _memberships(pool)
        kept = old & new if new_key == old_key else set()
        for c, free in old - kept:
            bucket = self.levels[c][free]
            del bucket[bisect.bisect_left(bucket, (old_key,))]
        for c, free in new - kept:
            bisect.insort(self.levels[c][free], (new_key, pool))
        self.members[pool] = (new_key, new)

    def search(
        self,
        classes: tuple[int, ...],
        *,
        count: int,
        others: int,
        nodes: int,
        allowed: Mapping[PoolState, Any],
        evaluate: Callable[[PoolState], Fit | None],
    ) -> Fit | None:
        """The tightest fit (least `Fit.binpack_key`) among `allowed` pools whose groups of
        `classes` hold `count`, the first request's devices: the fit a scan of every allowed
        pool would choose. `others` counts the devices of the replica's other requests.

        Walks leftover L = 0, 1, ... : at L every pool met has no usable node with fewer than
        count + L free, so no fit found later can leave fewer than nodes × (L - others) free
        (the other requests may draw from the first one's group). Pools met at L may still
        tie the best fit on what it leaves free and win on the tie-break, so the walk ends
        only before a level whose bound the best fit beats outright, and a bucket is left as
        soon as its next pool could not win even a tie.
        """
        seen: set[PoolState] = set()
        best: Fit | None = None
        deepest = max((self.counts[c] for c in classes), default=0) - count
        for leftover in range(deepest + 1):
            bound = nodes * max(0, leftover - others)
            if best is not None and best.leftover < bound:
                return best
            for bucket in self._at_leftover(classes, count + leftover):
                for key, pool in bucket:
                    if best is not None and best.leftover <= bound and key >= pool_key(best.pool):
                        break  # the rest can at best tie on leftover, and lose the tie-break
                    if pool in seen or pool not in allowed:
                        continue
                    seen.add(pool)
                    fit = evaluate(pool)
                    if fit is not None and (best is None or fit.binpack_key() < best.binpack_key()):
                        best = fit
        return best

    def _at_leftover(self, classes: tuple[int, ...], free: int) -> list[Bucket]:
        """The buckets of pools with a node having exactly `free` devices of a class free."""
        # No copies: nothing changes the buckets while a search walks them.
        return [self.levels[c][free] for c in classes if free <= self.counts[c]]


def _memberships(pool: PoolState) -> set[tuple[int, int]]:
    keys: set[tuple[int, int]] = set()
    for node in pool.nodes.values():
        for c, free in zip(pool.classes, node.free, strict=True):
            if free > 0:
                keys.add((c, free))
    if pool.empty:  # an empty node has every device of every group free
        groups = zip(pool.classes, pool.shape.groups, strict=True)
        keys.update((c, count) for c, (_, count) in groups)
    return keys
