"""Session affinity: sticky while the set is stable, minimal movement when it changes."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from inferplane.policy.routing import decisions, registry
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest

sessions = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=60, unique=True)
names = st.lists(
    st.text("abcdefgh0123456789-", min_size=1, max_size=8), min_size=2, max_size=8, unique=True
)


def _placement(endpoints: list[str], keys: list[str], seed: int = 0) -> dict[str, str]:
    strategy = registry.make("session")
    rng = random.Random(seed)
    fleet = [EndpointState(n, in_flight=len(n)) for n in endpoints]
    out = {}
    for key in keys:
        decision = registry.route(fleet, RouteRequest(session=key), strategy=strategy, rng=rng)
        assert isinstance(decision, decisions.Routed)
        out[key] = decision.endpoint
    return out


@given(endpoints=names, keys=sessions, seed=st.integers(0, 100))
def test_a_session_sticks_to_one_endpoint_whatever_the_load_or_draw(
    endpoints: list[str], keys: list[str], seed: int
) -> None:
    first = _placement(endpoints, keys, seed)
    again = _placement(list(reversed(endpoints)), keys + keys, seed + 1)
    assert first == again


@given(endpoints=names, keys=sessions, data=st.data())
def test_only_the_removed_endpoints_sessions_move(
    endpoints: list[str], keys: list[str], data: st.DataObject
) -> None:
    gone = data.draw(st.sampled_from(endpoints))
    before = _placement(endpoints, keys)
    after = _placement([n for n in endpoints if n != gone], keys)
    for key in keys:
        if before[key] != gone:
            assert after[key] == before[key]
        else:
            assert after[key] != gone


@given(endpoints=names, keys=sessions)
def test_a_new_endpoint_takes_sessions_only_for_itself(
    endpoints: list[str], keys: list[str]
) -> None:
    before = _placement(endpoints[:-1], keys)
    after = _placement(endpoints, keys)
    for key in keys:
        assert after[key] in (before[key], endpoints[-1])


def test_sessions_spread_over_endpoints() -> None:
    placed = _placement(["a", "b", "c", "d"], [f"user-{i}" for i in range(400)])
    counts = {n: list(placed.values()).count(n) for n in "abcd"}
    assert min(counts.values()) >= 60, counts


def test_without_a_session_the_least_loaded_endpoint_takes_it() -> None:
    fleet = [EndpointState("busy", in_flight=4), EndpointState("idle", in_flight=1)]
    strategy = registry.make("session")
    decision = registry.route(fleet, RouteRequest(), strategy=strategy, rng=random.Random(0))
    assert isinstance(decision, decisions.Routed)
    assert decision.endpoint == "idle"
