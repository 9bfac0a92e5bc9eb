"""The router: retries never return to a tried endpoint, empty routes are redrawn, outcomes
are kept for routing and the fallback verdict."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.gateway.router import Choice, Router
from inferplane.gateway.table import ServiceEntry, Table
from inferplane.policy.routing import prefixes, registry
from inferplane.policy.routing.decisions import NoEndpoint
from inferplane.policy.routing.requests import RouteRequest
from tests.unit.gateway.objects import endpoint, service, table_of

REQUEST = RouteRequest()


def entry(t: Table, name: str = "svc") -> ServiceEntry:
    return t.services_by_name[("default", name)]


def choose(router: Router, t: Table, tried: set[str] | None = None, **kw: Any) -> Choice:
    choice = router.choose(
        t,
        entry(t),
        kw.pop("request", REQUEST),
        0.0,
        tried=tried if tried is not None else set(),
        empty_routes=kw.pop("empty_routes", set()),
    )
    assert isinstance(choice, Choice), choice
    return choice


def three(strategy: str) -> Table:
    return table_of(
        service("svc", [{"deployment": "d"}], strategy=strategy),
        *(endpoint(f"d-{i}", "d") for i in range(3)),
    )


@pytest.mark.parametrize("strategy", ["round-robin", "least-request", "power-of-two", "session"])
def test_a_tried_endpoint_is_never_chosen_again(strategy: str) -> None:
    t = three(strategy)
    router = Router(region=None, seed=1)
    for _ in range(30):
        assert choose(router, t, tried={"d-0", "d-2"}).endpoint.name == "d-1"
    nothing = router.choose(
        t, entry(t), REQUEST, 0.0, tried={"d-0", "d-1", "d-2"}, empty_routes=set()
    )
    assert isinstance(nothing, NoEndpoint)


def test_a_retry_keeps_the_tried_endpoint_in_prefix_awares_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strategy = prefixes.PrefixAware(index=prefixes.PrefixIndex(block_chars=4))
    monkeypatch.setitem(registry.STRATEGIES, "prefix-aware", lambda: strategy)
    t = three("prefix-aware")
    router = Router(region=None, seed=1)
    request = RouteRequest(prompt_text="a shared system prompt")
    first = choose(router, t, request=request).endpoint.name
    second = choose(router, t, tried={first}, request=request).endpoint.name
    assert second != first
    assert strategy.index.endpoints() == {first, second}, "the failed one was not forgotten"
    assert choose(router, t, request=request).decision is not None


def test_the_strategy_is_kept_per_route_across_calls() -> None:
    t = three("round-robin")
    router = Router(region=None, seed=1)
    names = [choose(router, t).endpoint.name for _ in range(6)]
    assert names == ["d-0", "d-1", "d-2", "d-0", "d-1", "d-2"]


def test_not_ready_endpoints_are_never_chosen() -> None:
    t = table_of(
        service("svc", [{"deployment": "d"}]),
        endpoint("d-0", "d", ready=False),
        endpoint("d-1", "d"),
    )
    router = Router(region=None, seed=3)
    assert {choose(router, t).endpoint.name for _ in range(20)} == {"d-1"}


def split_table() -> Table:
    routes = [
        {"deployment": "empty", "weight": 1000},
        {"endpoint": "missing", "weight": 1000},
        {"deployment": "full", "weight": 1},
    ]
    return table_of(
        service("svc", routes),
        endpoint("e-0", "empty", ready=False),
        endpoint("f-0", "full"),
    )


def test_empty_routes_are_skipped_and_the_draw_repeated() -> None:
    t = split_table()
    for seed in range(10):
        empty: set[str] = set()
        choice = choose(Router(region=None, seed=seed), t, empty_routes=empty)
        assert choice.endpoint.name == "f-0"
        assert choice.route.target() == "deployment/full"
        assert empty <= {"deployment/empty", "endpoint/missing"}


def test_with_every_route_empty_there_is_no_endpoint() -> None:
    t = table_of(service("svc", [{"deployment": "empty"}]), endpoint("e-0", "empty", ready=False))
    empty: set[str] = set()
    decision = Router(region=None).choose(
        t, entry(t), REQUEST, 0.0, tried=set(), empty_routes=empty
    )
    assert isinstance(decision, NoEndpoint)
    assert empty == {"deployment/empty"}


def external_table() -> Table:
    return table_of(
        service("svc", [{"endpoint": "ext"}]),
        endpoint("ext", external=True, url="https://api.example.com", ready=False),
    )


def test_an_external_route_goes_to_its_endpoint_until_tried() -> None:
    t = external_table()
    router = Router(region=None)
    choice = choose(router, t)
    assert choice.endpoint.name == "ext" and choice.decision is None
    again = router.choose(t, entry(t), REQUEST, 0.0, tried={"ext"}, empty_routes=set())
    assert isinstance(again, NoEndpoint)


def test_has_ready() -> None:
    router = Router(region=None)
    assert router.has_ready(split_table(), entry(split_table()))
    assert router.has_ready(external_table(), entry(external_table()))
    none_ready = table_of(service("svc", [{"deployment": "d"}]), endpoint("d-0", "d", ready=False))
    assert not router.has_ready(none_ready, entry(none_ready))
    weightless = table_of(
        service("svc", [{"deployment": "d", "weight": 0}, {"deployment": "x"}]),
        endpoint("d-0", "d"),
    )
    assert not router.has_ready(weightless, entry(weightless)), "weight 0 takes no traffic"
    gone = table_of(service("svc", [{"endpoint": "ext"}]))
    assert not router.has_ready(gone, entry(gone))


def guarded(**bounds: Any) -> tuple[Router, ServiceEntry, Table]:
    when = {"minRequests": 4, "windowSeconds": 30.0} | bounds
    t = table_of(service("svc", [{"deployment": "d"}], fallbackWhen=when), endpoint("d-0", "d"))
    return Router(region=None), entry(t), t


def record(router: Router, svc: ServiceEntry, t: Table, outcomes: list[tuple[bool, float]]) -> None:
    ep = t.endpoints_by_name[("default", "d-0")]
    for i, (ok, ttfb) in enumerate(outcomes):
        router.outcome(svc, ep, 100.0 + i * 0.01, ok, ttfb)


def test_outcomes_feed_the_services_fallback_verdict() -> None:
    """The verdict itself is policy (tests/unit/policy/routing/test_fallbacks.py); the
    router keeps the windows it reads."""
    router, svc, t = guarded(errorRate=0.5)
    record(router, svc, t, [(False, 0.0)] * 3)
    assert router.unhealthy(svc, 100.1) is None, "3 < minRequests"
    record(router, svc, t, [(False, 0.0)])
    assert router.unhealthy(svc, 100.1) == "error rate 100% ≥ 50%"
    assert router.unhealthy(svc, 200.0) is None, "the failures left the window"


def test_outcomes_feed_the_endpoints_error_rate_for_routing() -> None:
    t = table_of(
        service("svc", [{"deployment": "d"}], strategy="round-robin"),
        endpoint("d-0", "d"),
        endpoint("d-1", "d"),
    )
    router = Router(region=None)
    svc = entry(t)
    router.outcome(svc, t.endpoints_by_name[("default", "d-0")], 0.0, False, 0.0)
    assert {choose(router, t).endpoint.name for _ in range(4)} == {"d-1"}, "failing d-0 avoided"


def test_in_flight_counts() -> None:
    t = three("least-request")
    router = Router(region=None, seed=0)
    ep = t.endpoints_by_name[("default", "d-0")]
    router.started(ep)
    router.started(ep)
    router.finished(ep)
    assert router.in_flight[("default", "d-0")] == 1
