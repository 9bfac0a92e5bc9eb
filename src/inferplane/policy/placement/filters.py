"""The filters, in the order a replica meets them, each with the reason it gives.

Clusters first (selector, Ready, not cordoned, a runtime that runs gangs when the replica is
one), then pools: spot, price, gang size, device
selectors, whether an empty node could hold the replica at all, and last whether one can now.
Everything before the last is static for a (demand shape, pool shape) pair and memoised, so
ten thousand replicas of a few shapes pay for a few verdicts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum

from inferplane.api import fleet
from inferplane.policy import devices
from inferplane.policy.placement import demands, fits, state


class Stage(IntEnum):
    """How far a cluster got through the filters; a higher stage is a nearer miss."""

    SELECTOR = 0
    NOT_READY = 1
    CORDONED = 2
    RUNTIME = 3
    NO_POOLS = 4
    SPOT = 5
    PRICE = 6
    GANG = 7
    DEVICES = 8
    NODE_SIZE = 9
    FULL = 10
    FITS = 11


SINGLE_NODE_RUNTIMES = frozenset({"process"})
"""Runtimes that run single-node replicas only: a gang is never placed on their clusters (the
process runtime's engines are processes of one host's agent)."""


def reason(stage: Stage, shape: demands.Shape, detail: str = "") -> str:
    """What a cluster stopped at, worded to follow "N clusters ..." as Kubernetes words it."""
    texts = {
        Stage.SELECTOR: "did not match the cluster selector",
        Stage.NOT_READY: "were not Ready",
        Stage.CORDONED: "were cordoned",
        Stage.RUNTIME: f"run single-node replicas only (runtime {detail or 'process'})",
        Stage.NO_POOLS: "had no pools",
        Stage.SPOT: "had only spot pools (allowSpot is false)",
        Stage.PRICE: f"had no pool within ${shape.max_price or 0:.2f}/h per replica",
        Stage.GANG: f"had no pool of {shape.nodes} nodes",
        Stage.DEVICES: f"had no pool with devices matching {detail}",
        Stage.NODE_SIZE: f"had no pool whose nodes hold {shape.describe()}",
        Stage.FULL: f"had no pool with {shape.describe()} free",
        Stage.FITS: "fit",
    }
    return texts[stage]


def cluster_stage(cluster: fleet.Cluster, shape: demands.Shape) -> Stage | None:
    """The stage a cluster fails at, or None when its pools may be considered."""
    if not shape.cluster_selector.matches(cluster.metadata.labels):
        return Stage.SELECTOR
    why = state.schedulable(cluster)
    if why == "cordoned":
        return Stage.CORDONED
    if why == "not-ready":
        return Stage.NOT_READY
    if shape.nodes > 1 and cluster.spec.runtime in SINGLE_NODE_RUNTIMES:
        return Stage.RUNTIME
    return None


@dataclass(frozen=True)
class Verdict:
    """Whether a pool could ever hold the demand, and if so which groups each request may use."""

    stage: Stage
    """FITS when the pool passes every static filter, else the one it fails."""
    options: fits.Options = ()
    detail: str = ""
    """For DEVICES: the name of the request that matched nothing."""
    errors: tuple[str, ...] = ()
    """For DEVICES: selector evaluation errors met on the way (a missing attribute...)."""


def pool_verdict(pool: state.PoolState, shape: demands.Shape) -> Verdict:
    if pool.spot and not shape.allow_spot:
        return Verdict(Stage.SPOT)
    if shape.max_price is not None and pool.price * shape.nodes > shape.max_price:
        return Verdict(Stage.PRICE)
    return shape_verdict(pool.shape, shape.needs, shape.nodes, shape.cpu_milli, shape.memory_bytes)


@functools.lru_cache(maxsize=65536)
def shape_verdict(
    pool: state.PoolShape,
    needs: tuple[demands.DeviceNeed, ...],
    nodes: int,
    cpu_milli: int,
    memory_bytes: int,
) -> Verdict:
    """The static part of the pool filter; a pure function, memoised."""
    if pool.node_count < nodes:
        return Verdict(Stage.GANG)
    options: list[tuple[int, ...]] = []
    for need in needs:
        matching, errors = _matching_groups(pool, need)
        if not matching:
            return Verdict(Stage.DEVICES, detail=need.name, errors=tuple(sorted(set(errors))))
        options.append(matching)
    counts = tuple(need.count for need in needs)
    full = [count for _, count in pool.groups]
    too_small = pool.cpu < cpu_milli or pool.memory < memory_bytes
    if too_small or fits.fit_free(full, tuple(options), counts) is None:
        return Verdict(Stage.NODE_SIZE)
    return Verdict(Stage.FITS, tuple(options))


def _matching_groups(
    pool: state.PoolShape, need: demands.DeviceNeed
) -> tuple[tuple[int, ...], list[str]]:
    """Groups whose devices satisfy every selector of the request, and evaluation errors."""
    matching: list[int] = []
    errors: list[str] = []
    for g, (key, _count) in enumerate(pool.groups):
        failed = _first_failure(need.selectors, key)
        if failed is None:
            matching.append(g)
        elif failed.error:
            errors.append(failed.error)
    return tuple(matching), errors


def _first_failure(selectors: tuple[str, ...], key: devices.GroupKey) -> devices.Match | None:
    """The first selector the group fails, or None; later ones are not evaluated, so an L4
    is not blamed for lacking an attribute only an H100 selector further on reads."""
    for text in selectors:
        result = devices.matches_key(text, key)
        if not result.ok:
            return result
    return None
