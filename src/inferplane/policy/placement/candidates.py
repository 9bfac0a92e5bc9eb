"""The pools a demand shape may use at all, found once per shape and kept.

Replicas of one deployment share a shape, so the cluster and static pool filters run once
for all of them; what is left per replica is the free-capacity question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from inferplane.api import fleet
from inferplane.policy.placement import demands, filters, fits
from inferplane.policy.placement.state import PoolState

Allowed = dict[PoolState, fits.Options]
"""Pools a search may consider, each with the groups each device request may draw from."""


@dataclass
class Candidates:
    """The statically fitting pools of one demand shape, and views of them by strategy."""

    shape: demands.Shape
    allowed: Allowed
    classes: tuple[int, ...]
    """Index classes of the groups that match the first device request, for the search."""
    _tiers: list[Allowed] | None = None
    _domains: dict[str | None, dict[str, Allowed]] = field(default_factory=dict)
    _cached: dict[frozenset[str], Allowed] = field(default_factory=dict)

    def price_tiers(self) -> list[Allowed]:
        """Pools grouped by price per replica-hour, cheapest first."""
        if self._tiers is None:
            by_price: dict[float, Allowed] = {}
            for pool, options in self.allowed.items():
                by_price.setdefault(pool.price * self.shape.nodes, {})[pool] = options
            self._tiers = [by_price[price] for price in sorted(by_price)]
        return self._tiers

    def by_domain(
        self, label: str | None, clusters: Mapping[str, fleet.Cluster]
    ) -> dict[str, Allowed]:
        """Pools grouped by spread domain: their cluster, or that cluster's value of `label`."""
        if label not in self._domains:
            grouped: dict[str, Allowed] = {}
            for pool, options in self.allowed.items():
                grouped.setdefault(domain(pool.cluster, label, clusters), {})[pool] = options
            self._domains[label] = grouped
        return self._domains[label]

    def in_clusters(self, names: frozenset[str]) -> Allowed:
        if names not in self._cached:
            self._cached[names] = {p: o for p, o in self.allowed.items() if p.cluster in names}
        return self._cached[names]


def domain(cluster: str, label: str | None, clusters: Mapping[str, fleet.Cluster]) -> str:
    """The spread domain of a cluster: its name, or its value of the label ('' if unset)."""
    if label is None:
        return cluster
    found = clusters.get(cluster)
    return found.metadata.labels.get(label, "") if found is not None else ""


def find(
    shape: demands.Shape,
    clusters: Mapping[str, fleet.Cluster],
    by_cluster: Mapping[str, Sequence[PoolState]],
) -> Candidates:
    """Run the static filters over the fleet for one shape."""
    allowed: Allowed = {}
    classes: dict[int, None] = {}
    for name, cluster in clusters.items():
        if filters.cluster_stage(cluster, shape) is not None:
            continue
        for pool in by_cluster.get(name, ()):
            verdict = filters.pool_verdict(pool, shape)
            if verdict.stage is filters.Stage.FITS:
                allowed[pool] = verdict.options
                if verdict.options:
                    classes.update((pool.classes[g], None) for g in verdict.options[0])
    ordered = dict(sorted(allowed.items(), key=lambda item: item[0].order))
    return Candidates(shape, ordered, tuple(classes))
