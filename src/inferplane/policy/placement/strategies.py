"""Placement strategies: how to choose among the pools a replica fits in. A registry by name.

Each strategy has two faces that must agree. `choose` is the fast one the scheduler runs: it
walks pools in the strategy's order and stops early. `key` is the plain definition, a sort
key over every fitting pool; tests check that what `choose` picks is never beaten on the
first `exact` parts of `key`. `Context.best` is exact on all of binpack's key, so only spread,
which takes the first domain in fleet order among those with as few replicas, settles the
rest differently.

- binpack: the tightest fit, fewest devices left free on the chosen nodes; then pools
  already in use; then pools with fewer empty nodes.
- spread: the cluster (or value of spreadLabel) with the fewest replicas of the deployment,
  binpack within it.
- cheapest: the lowest price per replica-hour (nodes × node price), binpack among equals.
- cached: clusters whose ModelCache for the model is Ready, binpack among them; binpack over
  the rest when none fits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from inferplane.api import fleet
from inferplane.policy.placement import candidates as candidates_
from inferplane.policy.placement.candidates import Allowed, Candidates
from inferplane.policy.placement.demands import Demand, ModelRef
from inferplane.policy.placement.fits import Fit


class Context(Protocol):
    """What a strategy asks of the scheduler."""

    @property
    def clusters(self) -> Mapping[str, fleet.Cluster]:
        """Clusters by name (read-only here)."""
        ...

    def best(self, demand: Demand, found: Candidates, allowed: Allowed) -> Fit | None:
        """The tightest fit (least `Fit.binpack_key`) among `allowed`, a subset of
        `found.allowed`: the same whether the scheduler walks its buckets or fits every pool."""
        ...

    def cached_clusters(self, model: ModelRef | None) -> frozenset[str]:
        """Clusters where a ModelCache of the model is Ready."""
        ...

    def spread_counts(self, demand: Demand) -> Mapping[str, int]:
        """Replicas of the demand's deployment per spread domain."""
        ...


@dataclass(frozen=True)
class Choice:
    fit: Fit
    why: str


@dataclass(frozen=True)
class Strategy:
    name: str
    choose: Callable[[Context, Demand, Candidates], Choice | None]
    key: Callable[[Context, Demand, Fit], tuple[Any, ...]]
    exact: int
    """How many leading parts of `key` the fast `choose` always gets optimal."""


def _binpack_why(fit: Fit) -> str:
    pick = fit.picks[0]
    pool = fit.pool
    if not pick.groups:
        return "binpack: no devices asked; " + (
            "a node already in use" if not pick.empty else "an empty node"
        )
    group = pool.group_names[pick.groups[0]]
    count = pool.shape.groups[pick.groups[0]][1]
    where = (
        f"node {pick.node}"
        if len(fit.picks) == 1
        else f"nodes {', '.join(str(p.node) for p in fit.picks)}"
    )
    return f"binpack: leaves {fit.leftover} of {count * len(fit.picks)} {group} free on {where}"


def choose_binpack(ctx: Context, demand: Demand, found: Candidates) -> Choice | None:
    fit = ctx.best(demand, found, found.allowed)
    return Choice(fit, _binpack_why(fit)) if fit is not None else None


def choose_cheapest(ctx: Context, demand: Demand, found: Candidates) -> Choice | None:
    for tier in found.price_tiers():
        fit = ctx.best(demand, found, tier)
        if fit is not None:
            price = fit.pool.price * demand.shape.nodes
            return Choice(fit, f"cheapest: ${price:.2f}/h per replica; {_binpack_why(fit)}")
    return None


def choose_spread(ctx: Context, demand: Demand, found: Candidates) -> Choice | None:
    counts = ctx.spread_counts(demand)
    domains = found.by_domain(demand.spread_label, ctx.clusters)
    # Domains without a replica of the deployment first, in fleet order; then the fullest last.
    order = [d for d in domains if d not in counts]
    order += sorted((d for d in domains if d in counts), key=lambda d: counts[d])
    for name in order:
        fit = ctx.best(demand, found, domains[name])
        if fit is not None:
            what = f"{demand.spread_label}={name}" if demand.spread_label else f"cluster {name}"
            return Choice(
                fit, f"spread: {counts.get(name, 0)} replicas of the deployment in {what}"
            )
    return None


def choose_cached(ctx: Context, demand: Demand, found: Candidates) -> Choice | None:
    cached = ctx.cached_clusters(demand.model)
    if cached:
        fit = ctx.best(demand, found, found.in_clusters(cached))
        if fit is not None:
            return Choice(fit, f"cached: weights Ready in {fit.pool.cluster}; {_binpack_why(fit)}")
    fit = ctx.best(demand, found, found.allowed)
    if fit is None:
        return None
    return Choice(fit, f"cached: no cluster that fits holds the weights; {_binpack_why(fit)}")


def _key_binpack(ctx: Context, demand: Demand, fit: Fit) -> tuple[Any, ...]:
    return fit.binpack_key()


def _key_cheapest(ctx: Context, demand: Demand, fit: Fit) -> tuple[Any, ...]:
    return (fit.pool.price * demand.shape.nodes, *fit.binpack_key())


def _key_spread(ctx: Context, demand: Demand, fit: Fit) -> tuple[Any, ...]:
    where = candidates_.domain(fit.pool.cluster, demand.spread_label, ctx.clusters)
    return (ctx.spread_counts(demand).get(where, 0), *fit.binpack_key())


def _key_cached(ctx: Context, demand: Demand, fit: Fit) -> tuple[Any, ...]:
    cached = fit.pool.cluster in ctx.cached_clusters(demand.model)
    return (0 if cached else 1, *fit.binpack_key())


STRATEGIES: dict[str, Strategy] = {
    "binpack": Strategy("binpack", choose_binpack, _key_binpack, exact=4),
    "spread": Strategy("spread", choose_spread, _key_spread, exact=1),
    "cheapest": Strategy("cheapest", choose_cheapest, _key_cheapest, exact=5),
    "cached": Strategy("cached", choose_cached, _key_cached, exact=5),
}
"""Strategies by the name a Deployment's placement.strategy gives."""
