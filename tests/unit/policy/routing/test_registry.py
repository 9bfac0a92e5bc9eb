"""Stage two as a whole: names, readiness, regions, and the empty answer."""

from __future__ import annotations

import random
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.api import services
from inferplane.policy.routing import decisions, regions, registry
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest

endpoint_states = st.builds(
    EndpointState,
    name=st.sampled_from([f"e{i}" for i in range(6)]),
    region=st.sampled_from(["", "eu", "us"]),
    ready=st.booleans(),
    in_flight=st.integers(0, 100),
    engine_running=st.integers(0, 100),
    engine_waiting=st.integers(0, 20),
    kv_usage=st.floats(0, 1),
    error_rate=st.floats(0, 1),
)
fleets = st.lists(endpoint_states, max_size=6, unique_by=lambda e: e.name)
route_requests = st.builds(
    RouteRequest,
    prompt_text=st.text(max_size=600),
    session=st.none() | st.text(min_size=1, max_size=8),
)


def test_every_strategy_the_api_allows_is_registered() -> None:
    assert set(typing.get_args(services.RoutingStrategy)) == set(registry.STRATEGIES)
    for name in registry.STRATEGIES:
        assert registry.make(name).name == name


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(registry.UnknownStrategy, match="known: least-request, power-of-two"):
        registry.make("fastest")


@given(
    name=st.sampled_from(sorted(registry.STRATEGIES)),
    fleet=fleets,
    requests=st.lists(route_requests, min_size=1, max_size=5),
    local=st.none() | st.sampled_from(["eu", "us"]),
    seed=st.integers(0, 1000),
)
def test_a_not_ready_endpoint_is_never_chosen(
    name: str,
    fleet: list[EndpointState],
    requests: list[RouteRequest],
    local: str | None,
    seed: int,
) -> None:
    strategy = registry.make(name)
    rng = random.Random(seed)
    ready = {e.name for e in fleet if e.ready}
    for request in requests:
        policy = regions.RegionPolicy(local=local)
        decision = registry.route(fleet, request, strategy=strategy, rng=rng, region=policy)
        if ready:
            assert isinstance(decision, decisions.Routed)
            assert decision.endpoint in ready
            assert decision.strategy == name
        else:
            assert isinstance(decision, decisions.NoEndpoint)


def _route(fleet: list[EndpointState], local: str) -> decisions.Decision:
    policy = regions.RegionPolicy(local=local, saturated_load=10)
    strategy = registry.make("least-request")
    return registry.route(
        fleet, RouteRequest(), strategy=strategy, rng=random.Random(0), region=policy
    )


def test_the_local_region_is_preferred_even_when_busier() -> None:
    fleet = [EndpointState("far", region="us"), EndpointState("near", region="eu", in_flight=5)]
    assert _route(fleet, "eu") == decisions.Routed(
        "near", "least-request", "least-request: load 5", spilled=False
    )


def test_spills_over_when_every_local_endpoint_is_saturated() -> None:
    fleet = [EndpointState("far", region="us"), EndpointState("near", region="eu", in_flight=10)]
    decision = _route(fleet, "eu")
    assert isinstance(decision, decisions.Routed)
    assert (decision.endpoint, decision.spilled) == ("far", True)


def test_spills_over_when_no_local_endpoint_is_ready_or_all_are_failing() -> None:
    down = [EndpointState("far", region="us"), EndpointState("near", region="eu", ready=False)]
    failing = [
        EndpointState("far", region="us"),
        EndpointState("near", region="eu", error_rate=0.9),
    ]
    for fleet in (down, failing):
        decision = _route(fleet, "eu")
        assert isinstance(decision, decisions.Routed)
        assert decision.endpoint == "far"


def test_engine_reports_refine_the_own_in_flight_count() -> None:
    assert EndpointState("a", in_flight=3).load() == 3
    assert EndpointState("a", in_flight=3, engine_running=4, engine_waiting=2).load() == 6
    busier_cache = EndpointState("a", in_flight=3, kv_usage=1.0)
    assert 3 < busier_cache.load() < 4
