"""Why a replica fits nowhere: one reason per cluster, the filter it got furthest through.

Counted and worded as Kubernetes words them: "0/5 clusters available: 3 did not match the
cluster selector, 2 had no pool with 2× h100 free". The counts add up to the fleet's clusters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from inferplane.api import fleet
from inferplane.policy.placement import decisions, demands, filters
from inferplane.policy.placement.state import PoolState


def unschedulable(
    demand: demands.Demand,
    clusters: Mapping[str, fleet.Cluster],
    by_cluster: Mapping[str, Sequence[PoolState]],
) -> decisions.Unschedulable:
    """The reasons, given that no pool the filters let through has room for the replica."""
    counts: Counter[str] = Counter()
    errors: set[str] = set()
    for name, cluster in clusters.items():
        stage, detail, found = cluster_reason(cluster, by_cluster.get(name, ()), demand.shape)
        counts[filters.reason(stage, demand.shape, detail)] += 1
        errors.update(found)
    reasons = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return decisions.Unschedulable(demand.replica, len(clusters), reasons, tuple(sorted(errors)))


def cluster_reason(
    cluster: fleet.Cluster, pools: Sequence[PoolState], shape: demands.Shape
) -> tuple[filters.Stage, str, tuple[str, ...]]:
    """The furthest stage any of the cluster's pools reached, its detail, selector errors."""
    stage = filters.cluster_stage(cluster, shape)
    if stage is not None:
        detail = cluster.spec.runtime if stage is filters.Stage.RUNTIME else ""
        return stage, detail, ()
    if not pools:
        return filters.Stage.NO_POOLS, "", ()
    verdicts = [filters.pool_verdict(pool, shape) for pool in pools]
    furthest = max(verdicts, key=lambda v: v.stage)
    errors = tuple(e for v in verdicts for e in v.errors)
    # A pool that passes every static filter and still took no replica is full.
    stage = filters.Stage.FULL if furthest.stage is filters.Stage.FITS else furthest.stage
    return stage, furthest.detail, errors
