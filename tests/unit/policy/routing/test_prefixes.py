"""Prefix-aware routing: the block index, its LRU cap, affinity gated by load, and the
simulated workloads of bench/routing_live.py in miniature."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.policy.routing import decisions, prefixes, registry
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest
from tests.unit.policy.routing import sims


def test_blocks_chain_so_a_hash_names_the_whole_prefix() -> None:
    index = prefixes.PrefixIndex(block_chars=4)
    assert len(index.blocks("abcdefghij")) == 2  # the partial tail "ij" is never cached
    assert index.blocks("abcdefgh") == index.blocks("abcdefghXYZ")
    # The same second block after a different first block is a different prefix.
    assert index.blocks("zzzzefgh")[1] != index.blocks("abcdefgh")[1]
    assert len(prefixes.PrefixIndex(block_chars=4, max_blocks=3).blocks("x" * 100)) == 3


def test_matched_counts_leading_blocks_only() -> None:
    index = prefixes.PrefixIndex(block_chars=2)
    index.record("a", index.blocks("aabbcc"))
    assert index.matched("a", index.blocks("aabbcc")) == 3
    assert index.matched("a", index.blocks("aabbzz")) == 2
    assert index.matched("a", index.blocks("zzbbcc")) == 0
    assert index.matched("b", index.blocks("aabbcc")) == 0


def test_the_least_recently_used_entries_go_beyond_the_cap() -> None:
    index = prefixes.PrefixIndex(block_chars=2, max_entries=4)
    index.record("a", index.blocks("aabb"))
    index.record("b", index.blocks("ccdd"))
    index.record("a", index.blocks("aabb"))  # touched: now the most recent
    index.record("c", index.blocks("eeff"))
    assert len(index) == 4
    assert index.matched("b", index.blocks("ccdd")) == 0
    assert index.matched("a", index.blocks("aabb")) == 2
    assert index.endpoints() == frozenset({"a", "c"})


@pytest.mark.parametrize("field", ["block_chars", "max_entries"])
def test_sizes_below_one_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        prefixes.PrefixIndex(**{field: 0})


def test_an_endpoint_that_leaves_is_forgotten() -> None:
    strategy = prefixes.PrefixAware(index=prefixes.PrefixIndex(block_chars=8))
    fleet = [EndpointState("a"), EndpointState("b", in_flight=1)]
    rng = random.Random(0)
    registry.route(fleet, RouteRequest("x" * 64), strategy=strategy, rng=rng)
    assert strategy.index.endpoints() == frozenset({"a"})
    registry.route(fleet[1:], RouteRequest("y" * 64), strategy=strategy, rng=rng)
    assert strategy.index.endpoints() == frozenset({"b"})


def test_the_holder_of_a_prefix_gets_it_while_within_the_gate() -> None:
    strategy = prefixes.PrefixAware(index=prefixes.PrefixIndex(block_chars=8))
    rng = random.Random(0)
    prompt = RouteRequest("system prompt, long enough " * 4)
    strategy.choose([EndpointState("a"), EndpointState("b", in_flight=1)], prompt, rng)
    again = strategy.choose([EndpointState("a", in_flight=2), EndpointState("b")], prompt, rng)
    assert again.endpoint.name == "a"
    assert "blocks matched" in again.why
    busy = strategy.choose([EndpointState("a", in_flight=9), EndpointState("b")], prompt, rng)
    assert busy.endpoint.name == "b"
    assert "least-request" in busy.why


def test_the_gate_is_a_parameter() -> None:
    prompt = RouteRequest("p" * 512)
    closed = registry.make("prefix-aware", gate=prefixes.LoadGate(slack=0, fraction=0))
    open_ = registry.make("prefix-aware", gate=prefixes.LoadGate(slack=1e9, fraction=0))
    rng = random.Random(0)
    for strategy in (closed, open_):
        strategy.choose([EndpointState("a"), EndpointState("b", in_flight=1)], prompt, rng)
    fleet = [EndpointState("a", in_flight=50), EndpointState("b")]
    assert closed.choose(fleet, prompt, rng).endpoint.name == "b"
    assert open_.choose(fleet, prompt, rng).endpoint.name == "a"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_prefixes_hit_where_round_robin_misses(seed: int) -> None:
    # 44 groups over 4 engines caching 10 system prompts each: round-robin shows every
    # engine every group (hits ≈ 10/44), prefix-aware gives each engine about its own 11.
    # About 4.5 requests in flight: low enough that the gate's absolute slack rules.
    rng = random.Random(seed)
    workload = sims.shared_prefix_workload(rng, groups=44, requests=2000, duration=8)
    aware = sims.run(workload, registry.make("prefix-aware"), capacity=10, seed=seed)
    round_robin = sims.run(workload, registry.make("round-robin"), capacity=10, seed=seed)
    assert aware.hit_rate >= 0.75
    assert round_robin.hit_rate <= 0.25


@given(in_flight=st.lists(st.integers(0, 30), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_on_unique_prompts_it_is_least_request(in_flight: list[int], seed: int) -> None:
    strategy = registry.make("prefix-aware")
    rng = random.Random(seed)
    fleet = [EndpointState(f"e{i}", in_flight=n) for i, n in enumerate(in_flight)]
    for i in range(20):
        prompt = f"{i:04d}" + "unique question " * 20
        decision = registry.route(fleet, RouteRequest(prompt), strategy=strategy, rng=rng)
        assert isinstance(decision, decisions.Routed)
        assert fleet[int(decision.endpoint[1:])].in_flight == min(in_flight)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_on_unique_prompts_it_balances_as_least_request_does(seed: int) -> None:
    """Every choice goes to a least-loaded endpoint, as least-request's would (only the
    tie-break differs: the cache holding the fewest blocks), so no decision ever lands
    above least-request's worst, and the requests spread as evenly."""
    workload = sims.unique_workload(random.Random(seed), requests=1500)
    aware = sims.run(workload, registry.make("prefix-aware"), seed=seed, min_mean=1)
    least = sims.run(workload, registry.make("least-request"), seed=seed, min_mean=1)
    assert aware.worst_chosen_ratio <= least.worst_chosen_ratio
    counts = Counter(aware.chosen)
    assert max(counts.values()) - min(counts.values()) <= 0.02 * len(aware.chosen)


def test_new_prefixes_spread_evenly_over_the_caches() -> None:
    """At low load every endpoint ties; new prefixes go to the emptiest cache, not by the
    draw, so 8 groups land 2 per endpoint."""
    strategy = registry.make("prefix-aware")
    endpoints = [EndpointState(f"e{i}") for i in range(4)]
    rng = random.Random(0)
    homes = Counter()
    for group in range(8):
        prompt = f"group {group} " + "system prompt " * 40
        homes[strategy.choose(endpoints, RouteRequest(prompt_text=prompt), rng).endpoint.name] += 1
    assert sorted(homes.values()) == [2, 2, 2, 2]


@given(seed=st.integers(0, 10_000), duration=st.integers(20, 100))
@settings(max_examples=12, deadline=None)
def test_a_hot_prefix_never_piles_onto_one_endpoint(seed: int, duration: int) -> None:
    # Past a mean of slack / fraction = 6 in flight, no routing decision leaves its endpoint
    # above 1.5 × the mean. Random request lengths can still skew loads through departures,
    # which no router controls, so the whole-run bound is checked with equal lengths.
    rng = random.Random(seed)
    random_lengths = sims.hot_prefix_workload(rng, requests=500, duration=duration)
    run = sims.run(random_lengths, registry.make("prefix-aware"), seed=seed, min_mean=6)
    assert run.worst_chosen_ratio <= 1.5
    equal_lengths = sims.hot_prefix_workload(rng, requests=500, duration=duration, fixed=True)
    run = sims.run(equal_lengths, registry.make("prefix-aware"), seed=seed, min_mean=6)
    assert run.worst_ratio <= 1.5
