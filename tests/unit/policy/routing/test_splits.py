"""Stage one: the weighted split honours weights, never picks weight 0, and is replayable."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.api import services
from inferplane.policy.routing import decisions, splits


def _route(name: str, weight: int) -> services.Route:
    return services.Route(deployment=name, weight=weight)


def _shares(routes: list[services.Route], rng: random.Random, draws: int) -> dict[str, float]:
    counts: dict[str, int] = {}
    for _ in range(draws):
        chosen = splits.split(routes, rng)
        assert isinstance(chosen, services.Route)
        counts[chosen.target()] = counts.get(chosen.target(), 0) + 1
    return {target: n / draws for target, n in counts.items()}


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=20, deadline=None)
def test_ninety_ten_lands_within_three_percent_over_2000_draws(seed: int) -> None:
    routes = [_route("stable", 90), _route("canary", 10)]
    shares = _shares(routes, random.Random(seed), 2000)
    assert abs(shares["deployment/stable"] - 0.9) <= 0.03
    assert abs(shares.get("deployment/canary", 0.0) - 0.1) <= 0.03


@given(
    weights=st.lists(st.integers(0, 5), min_size=1, max_size=6),
    draw=st.floats(0.0, 1.0, exclude_max=True),
)
def test_a_route_of_weight_zero_is_never_picked(weights: list[int], draw: float) -> None:
    routes = [_route(f"d{i}", w) for i, w in enumerate(weights)]
    chosen = splits.split(routes, draw)
    if sum(weights) == 0:
        assert isinstance(chosen, decisions.NoEndpoint)
    else:
        assert isinstance(chosen, services.Route)
        assert chosen.weight > 0


def test_the_same_draw_gives_the_same_route() -> None:
    routes = [_route("a", 1), _route("b", 1), _route("external", 2)]
    assert splits.split(routes, 0.0) == routes[0]
    assert splits.split(routes, 0.49) == routes[1]
    assert splits.split(routes, 0.5) == routes[2]
    assert splits.split(routes, random.Random(5)) == splits.split(routes, random.Random(5))


def test_external_endpoints_take_their_share() -> None:
    routes = [_route("chat", 1), services.Route(endpoint="openai", weight=3)]
    assert splits.split(routes, 0.9) == routes[1]


def test_excluded_routes_are_redrawn_among_the_rest() -> None:
    routes = [_route("a", 9), _route("b", 1)]
    assert splits.split(routes, 0.1, exclude=frozenset({"deployment/a"})) == routes[1]
    gone = splits.split(routes, 0.1, exclude=frozenset({"deployment/a", "deployment/b"}))
    assert isinstance(gone, decisions.NoEndpoint)


@pytest.mark.parametrize("draw", [-0.1, 1.0, 2.0])
def test_a_draw_outside_zero_one_is_refused(draw: float) -> None:
    with pytest.raises(ValueError, match="draw must be in"):
        splits.split([_route("a", 1)], draw)
