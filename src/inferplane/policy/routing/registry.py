"""Routing strategies by the name a Service's `strategy` gives, and `route`, stage two whole.

The registry holds factories, not instances: a strategy may remember (round-robin's turn,
prefix-aware's index), and each Service route needs its own memory.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence, Set
from typing import Any

from inferplane.policy.routing import prefixes, regions, strategies
from inferplane.policy.routing.decisions import Decision, NoEndpoint, Routed
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest


class UnknownStrategy(ValueError):
    """A strategy name the registry does not hold."""


STRATEGIES: dict[str, Callable[..., strategies.Strategy]] = {
    "round-robin": strategies.RoundRobin,
    "least-request": strategies.LeastRequest,
    "power-of-two": strategies.PowerOfTwo,
    "session": strategies.Session,
    "prefix-aware": prefixes.PrefixAware,
}
"""Factories by name; keyword arguments go to the factory (e.g. prefix-aware's index)."""


def make(name: str, **params: Any) -> strategies.Strategy:
    """A fresh strategy of that name; UnknownStrategy names the ones there are."""
    factory = STRATEGIES.get(name)
    if factory is None:
        known = ", ".join(sorted(STRATEGIES))
        raise UnknownStrategy(f"unknown routing strategy {name!r}; known: {known}")
    return factory(**params)


def route(
    endpoints: Sequence[EndpointState],
    request: RouteRequest,
    *,
    strategy: strategies.Strategy,
    rng: random.Random,
    region: regions.RegionPolicy | None = None,
    names: frozenset[str] | None = None,
    tried: Set[str] = frozenset(),
) -> Decision:
    """Stage two: the endpoint of one route (all its endpoints, ready or not) for a request.

    The strategy first forgets endpoints that left, then chooses among the ready candidates
    of the preferred region. Endpoints this request already `tried` (retries.py) count as
    not ready but stay known to the strategy: a retry must not wipe prefix-aware's index of
    the one that failed. `names` are the endpoints' names when the caller already holds
    them (the gateway keeps them per routing table).
    """
    strategy.retain(names if names is not None else frozenset(e.name for e in endpoints))
    found = regions.candidates(endpoints, region or regions.RegionPolicy(), tried)
    if not found.endpoints:
        return NoEndpoint(f"none of {len(endpoints)} endpoints is ready")
    pick = strategy.choose(found.endpoints, request, rng)
    return Routed(pick.endpoint.name, strategy.name, pick.why, spilled=found.spilled)
