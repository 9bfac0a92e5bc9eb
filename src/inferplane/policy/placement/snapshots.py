"""The scheduler's snapshot, built from stored objects one way for every caller.

The scheduling controller and `inferplane schedule --dry-run` both build it here, so a dry run
sees what the scheduler sees: the Clusters, the Pools with the allocations they hold, the
ModelCaches, and the bound replicas of the deployments being placed (spreading counts them;
their devices are already in their pools' allocations). On a running deployment a dry run
therefore shows where replicas beyond those it has would go.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from inferplane.api import fleet, replicas
from inferplane.policy.placement.state import Snapshot

Stored = Mapping[str, Any]
"""An object as the resource API returns it."""


def snapshot_of(
    clusters: Iterable[Stored],
    pools: Iterable[Stored],
    caches: Iterable[Stored],
    bound: Iterable[Stored],
    *,
    deployments: Collection[tuple[str, str]],
) -> Snapshot:
    """The snapshot; of `bound` (any replicas), only the bound ones of `deployments`
    ((namespace, name) pairs) are kept (one being deleted still counts until it is gone, as
    it still holds its devices)."""
    return Snapshot(
        clusters=[fleet.Cluster.model_validate(c) for c in clusters],
        pools=[fleet.Pool.model_validate(p) for p in pools],
        caches=[fleet.ModelCache.model_validate(c) for c in caches],
        replicas=[replicas.Replica.model_validate(r) for r in bound if _counts(r, deployments)],
    )


def _counts(replica: Stored, deployments: Collection[tuple[str, str]]) -> bool:
    meta, spec = replica["metadata"], replica["spec"]
    if not spec.get("cluster"):
        return False
    return (meta.get("namespace") or "default", spec.get("deployment")) in deployments
