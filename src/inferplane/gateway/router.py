"""Drives the routing policy (policy/routing) with what the gateway knows right now.

It owns the policy's memory — one strategy instance per Service route, the seeded draw, the
windows of recent outcomes (health.Outcomes) — and the gateway's own live facts per
endpoint: requests in flight and what its engine last reported. The decisions themselves
(stage one and two, the redraw after a failure, the fallback verdict) are the pure code the
simulator runs too; what is left here is gathering the facts for them.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from inferplane.api import services
from inferplane.gateway.enginestats import EngineLoad
from inferplane.gateway.table import EndpointEntry, NsName, ServiceEntry, Table
from inferplane.policy.routing import fallbacks, health, regions, registry, retries, strategies
from inferplane.policy.routing.decisions import NoEndpoint, Routed
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest


class Choice(NamedTuple):
    """Where one attempt goes (a tuple: made once per request)."""

    route: services.Route
    endpoint: EndpointEntry
    decision: Routed | None
    """None for an external route (one endpoint, no strategy)."""


IDLE = EngineLoad()


class Router:
    def __init__(self, *, region: str | None, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.region = regions.RegionPolicy(local=region)
        self.in_flight: dict[NsName, int] = {}
        self.routed: dict[NsName, int] = {}
        """Attempts sent to each endpoint since the gateway started (the traffic report's
        arrivals are its differences)."""
        self.outcomes = health.Outcomes()
        """Recent outcomes by (namespace, endpoint) and by (namespace, service)."""
        self.engine_load: dict[NsName, EngineLoad] = {}
        """What each engine last reported (enginestats.py), by endpoint."""
        self._strategies: dict[tuple[str, str, str], strategies.Strategy] = {}
        self._sole: dict[tuple[str, str], Routed] = {}
        self._route_names: dict[
            tuple[str, str, str], tuple[tuple[EndpointEntry, ...], frozenset[str]]
        ] = {}

    def choose(
        self,
        table: Table,
        service: ServiceEntry,
        request: RouteRequest,
        now: float,
        *,
        tried: set[str],
        empty_routes: set[str],
    ) -> Choice | NoEndpoint:
        """A route by weight, then an endpoint of it not yet `tried` this request; routes
        found without a usable endpoint are added to `empty_routes` and the draw repeats
        (retries.draw)."""
        routes = service.spec.routes
        while True:
            route = retries.draw(routes, self.rng, empty_routes)
            if isinstance(route, NoEndpoint):
                return route
            choice = self._within(table, service, route, request, now, tried)
            if choice is not None:
                return choice
            empty_routes.add(route.target())

    def _within(
        self,
        table: Table,
        service: ServiceEntry,
        route: services.Route,
        request: RouteRequest,
        now: float,
        tried: set[str],
    ) -> Choice | None:
        ns = service.namespace
        if route.endpoint is not None:
            external = table.endpoints_by_name.get((ns, route.endpoint))
            if external is None or external.name in tried:
                return None
            return Choice(route, external, None)
        endpoints = table.endpoints.get((ns, route.deployment or ""), ())
        if len(endpoints) == 1 and self._alone(endpoints[0], tried):
            only = endpoints[0]
            return Choice(route, only, self._only(only, service.spec.strategy))
        states = [self._state(e, now) for e in endpoints]
        key = (ns, service.name, route.target())
        strategy = self._strategies.get(key)
        if strategy is None or strategy.name != service.spec.strategy:
            strategy = self._strategies[key] = registry.make(service.spec.strategy)
        decision = registry.route(
            states,
            request,
            strategy=strategy,
            rng=self.rng,
            region=self.region,
            names=self._names(key, endpoints),
            tried=tried,
        )
        if isinstance(decision, NoEndpoint):
            return None
        for chosen in endpoints:
            if chosen.name == decision.endpoint:
                return Choice(route, chosen, decision)
        raise AssertionError(f"{decision.endpoint} is not an endpoint of the route")

    def _names(
        self, key: tuple[str, str, str], endpoints: tuple[EndpointEntry, ...]
    ) -> frozenset[str]:
        """The route's endpoint names, made again only when the table gave it new endpoints
        (a table's tuples never change)."""
        held = self._route_names.get(key)
        if held is None or held[0] is not endpoints:
            held = self._route_names[key] = (endpoints, frozenset(e.name for e in endpoints))
        return held[1]

    def _alone(self, endpoint: EndpointEntry, tried: set[str]) -> bool:
        """A deployment's only endpoint, usable as it stands: no choice for a strategy."""
        local = self.region.local
        return (
            endpoint.ready
            and endpoint.name not in tried
            and (local is None or endpoint.region == local)
        )

    def _only(self, endpoint: EndpointEntry, strategy: str) -> Routed:
        key = (endpoint.name, strategy)
        decision = self._sole.get(key)
        if decision is None:
            decision = self._sole[key] = Routed(endpoint.name, strategy, "the only endpoint")
        return decision

    def _state(self, endpoint: EndpointEntry, now: float) -> EndpointState:
        key = (endpoint.namespace, endpoint.name)
        window = self.outcomes.endpoints.get(key)
        engine = self.engine_load.get(key, IDLE)
        # positional: keywords cost a measurable share of a request on the gateway's hot path
        return EndpointState(
            endpoint.name,
            endpoint.region,
            endpoint.ready,
            self.in_flight.get(key, 0),
            engine.running,
            engine.waiting,
            engine.kv_usage,
            # health.Outcomes.error_rate, inlined: a call per endpoint per request
            window.error_rate(now) if window is not None and window.errors else 0.0,
        )

    def has_ready(self, table: Table, service: ServiceEntry) -> bool:
        """True when any weighted route has somewhere to go."""
        for route in service.spec.routes:
            if route.weight <= 0:
                continue
            if route.endpoint is not None:
                if (service.namespace, route.endpoint) in table.endpoints_by_name:
                    return True
            elif (service.namespace, route.deployment or "") in table.ready:
                return True
        return False

    def unhealthy(self, service: ServiceEntry, now: float) -> str | None:
        """Why the service's recent outcomes cross its fallbackWhen bounds, else None."""
        window = self.outcomes.services.get((service.namespace, service.name))
        return fallbacks.verdict(service.spec.fallbackWhen, window, now)

    def started(self, endpoint: EndpointEntry) -> None:
        key = (endpoint.namespace, endpoint.name)
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.routed[key] = self.routed.get(key, 0) + 1

    def finished(self, endpoint: EndpointEntry) -> None:
        key = (endpoint.namespace, endpoint.name)
        self.in_flight[key] = self.in_flight.get(key, 1) - 1

    def outcome(
        self, service: ServiceEntry, endpoint: EndpointEntry, now: float, ok: bool, ttfb: float
    ) -> None:
        """One attempt ended: into the endpoint's and the service's windows of outcomes."""
        self.outcomes.record(
            (service.namespace, service.name),
            (endpoint.namespace, endpoint.name),
            service.spec.fallbackWhen.windowSeconds,
            now,
            ok,
            ttfb,
        )
