"""round-robin, least-request and power-of-two on hand-built snapshots."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from inferplane.policy.routing import registry
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest

loads = st.lists(st.integers(0, 20), min_size=1, max_size=8)


def _fleet(in_flight: list[int]) -> list[EndpointState]:
    return [EndpointState(f"e{i}", in_flight=n) for i, n in enumerate(in_flight)]


def test_round_robin_takes_each_endpoint_in_turn() -> None:
    strategy = registry.make("round-robin")
    fleet = _fleet([5, 0, 9])
    rng = random.Random(0)
    chosen = [strategy.choose(fleet, RouteRequest(), rng).endpoint.name for _ in range(6)]
    assert chosen == ["e0", "e1", "e2", "e0", "e1", "e2"]


@given(in_flight=loads, seed=st.integers(0, 1000))
def test_least_request_picks_a_least_loaded_endpoint(in_flight: list[int], seed: int) -> None:
    pick = registry.make("least-request").choose(
        _fleet(in_flight), RouteRequest(), random.Random(seed)
    )
    assert pick.endpoint.in_flight == min(in_flight)


def test_least_request_replays_with_the_same_seed() -> None:
    strategy = registry.make("least-request")
    fleet = _fleet([0, 0, 0, 0])
    first = [strategy.choose(fleet, RouteRequest(), random.Random(7)).endpoint for _ in range(3)]
    again = [strategy.choose(fleet, RouteRequest(), random.Random(7)).endpoint for _ in range(3)]
    assert first == again


@given(in_flight=st.lists(st.integers(0, 20), min_size=2, max_size=8), seed=st.integers(0, 1000))
def test_power_of_two_never_picks_a_strictly_most_loaded_endpoint(
    in_flight: list[int], seed: int
) -> None:
    pick = registry.make("power-of-two").choose(
        _fleet(in_flight), RouteRequest(), random.Random(seed)
    )
    top = max(in_flight)
    if in_flight.count(top) == 1 and len(set(in_flight)) > 1:
        assert pick.endpoint.in_flight < top


def test_power_of_two_with_one_endpoint_takes_it() -> None:
    pick = registry.make("power-of-two").choose(_fleet([3]), RouteRequest(), random.Random(0))
    assert pick.endpoint.name == "e0"
