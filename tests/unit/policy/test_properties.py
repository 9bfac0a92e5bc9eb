"""Properties of the scheduler over generated fleets and demand streams (hypothesis).

Whatever the fleet and the order of replicas: no device, node CPU or node memory is ever
given twice or beyond capacity; every binding honours the selectors, the cluster selector,
spot and price; a gang is whole, on distinct nodes of one pool; the reasons of an
unschedulable replica account for every cluster; and the fast search agrees with the
strategy's plain definition on what it promises to optimise.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.api import fleet
from inferplane.policy import devices
from inferplane.policy.placement import bindings, decisions, demands, scheduler, state, strategies
from tests.unit.policy.fleets import cluster, deployment, gpus, pool, product

PRODUCTS = ("H100", "A100", "L4")
MIG = 'device.attributes["gpu.nvidia.com"].migProfile == "1g.10gb"'


@st.composite
def device_groups(draw: st.DrawFn) -> list[dict[str, Any]]:
    first = gpus(draw(st.sampled_from(PRODUCTS)), draw(st.sampled_from((1, 2, 4, 8))))
    if not draw(st.booleans()):
        return [first]
    return [first, gpus("H100", draw(st.integers(1, 7)), name="mig", migProfile="1g.10gb")]


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[fleet.Cluster], list[fleet.Pool]]:
    clusters, pools = [], []
    for c in range(draw(st.integers(1, 5))):
        name = f"c{c}"
        phase = draw(st.sampled_from(("Ready", "Ready", "Ready", "NotReady")))
        region = draw(st.sampled_from(("eu", "us")))
        cordoned = draw(st.sampled_from((False,) * 9 + (True,)))
        clusters.append(cluster(name, phase=phase, cordoned=cordoned, region=region))
        for p in range(draw(st.integers(0, 3))):
            spec: dict[str, Any] = {
                "pricePerHour": draw(st.sampled_from((1.0, 2.0, 5.0))),
                "spot": draw(st.sampled_from((False, False, False, True))),
            }
            if draw(st.booleans()):
                spec["cpu"] = str(draw(st.sampled_from((4, 8, 16))))
            groups = draw(device_groups())
            pools.append(pool(f"p{p}", name, *groups, nodes=draw(st.integers(1, 4)), **spec))
    return clusters, pools


@st.composite
def demand_streams(draw: st.DrawFn) -> list[demands.Demand]:
    stream = []
    for d in range(draw(st.integers(1, 4))):
        rarely = st.sampled_from((False, False, False, True))
        placement: dict[str, Any] = {
            "strategy": draw(st.sampled_from(sorted(strategies.STRATEGIES))),
            "allowSpot": not draw(rarely),
        }
        if draw(rarely):
            placement["clusterSelector"] = {
                "matchLabels": {"region": draw(st.sampled_from(("eu", "us")))}
            }
        if draw(rarely):
            placement["maxPricePerHour"] = draw(st.sampled_from((2.0, 5.0)))
        if draw(st.booleans()):
            placement["spreadLabel"] = "region"
        selector = draw(st.sampled_from([product(p) for p in PRODUCTS] + [MIG]))
        dep = deployment(
            f"d{d}",
            count=draw(st.sampled_from((1, 1, 1, 2, 2, 3, 4, 8))),
            selectors=(selector,),
            nodes=draw(st.sampled_from((1, 1, 1, 1, 2))),
            cpu=draw(st.sampled_from((None, "1", "3"))),
            **placement,
        )
        stream += [demands.demand_for(dep, f"d{d}-{r}") for r in range(draw(st.integers(1, 8)))]
    return draw(st.permutations(stream))


def run(
    clusters: list[fleet.Cluster],
    pools: list[fleet.Pool],
    stream: list[demands.Demand],
    search_from: int,
) -> list[tuple[demands.Demand, decisions.Decision]]:
    s = scheduler.Scheduler(state.Snapshot(clusters, pools), search_from=search_from)
    out = []
    for demand in stream:
        _check_against_the_definition(s, demand)
        out.append((demand, s.place(demand)))
    return out


def _check_against_the_definition(s: scheduler.Scheduler, demand: demands.Demand) -> None:
    ranked = s.rank(demand)
    decision = s.decide(demand)
    if not ranked:
        assert isinstance(decision, decisions.Unschedulable)
        return
    assert isinstance(decision, decisions.Scheduled), "a fit exists but none was chosen"
    chosen = next(
        k
        for k, f in ranked
        if (f.pool.cluster, f.pool.name) == (decision.binding.cluster, decision.binding.pool)
    )
    exact = strategies.STRATEGIES[demand.strategy].exact
    assert chosen[:exact] == ranked[0][0][:exact]


@settings(max_examples=150)
@given(fleets(), demand_streams(), st.sampled_from((0, 1000)))
def test_placements_never_overcommit_and_honour_every_constraint(
    fleet_: tuple[list[fleet.Cluster], list[fleet.Pool]],
    stream: list[demands.Demand],
    search_from: int,
) -> None:
    clusters, pools = fleet_
    by_cluster = {c.metadata.name: c for c in clusters}
    by_pool = {(p.spec.cluster, p.metadata.name): p for p in pools}
    written = dict(by_pool)
    for demand, decision in run(clusters, pools, stream, search_from):
        if isinstance(decision, decisions.Unschedulable):
            assert sum(n for _, n in decision.reasons) == decision.clusters == len(clusters)
            continue
        binding = decision.binding
        key = (binding.cluster, binding.pool)
        _honours(demand.shape, by_cluster[binding.cluster], by_pool[key], binding)
        # allocate() refuses any device, CPU or memory given twice or beyond capacity.
        written[key] = bindings.allocate(written[key], binding, replica=demand.replica)
    for p in written.values():
        _within_capacity(p)


def _honours(
    shape: demands.Shape, c: fleet.Cluster, p: fleet.Pool, binding: decisions.Binding
) -> None:
    assert shape.cluster_selector.matches(c.metadata.labels)
    assert state.schedulable(c) is None
    assert shape.allow_spot or not p.spec.spot
    assert shape.max_price is None or p.spec.pricePerHour * shape.nodes <= shape.max_price
    # A gang is whole: as many distinct nodes as asked, each with every request's devices.
    assert len(binding.nodes) == len(set(binding.nodes)) == shape.nodes
    groups = {g.name: g for g in p.spec.devicesPerNode}
    per_node = Counter((s.node, s.request) for s in binding.devices)
    assert set(per_node) == {(n, need.name) for n in binding.nodes for need in shape.needs}
    for slot in binding.devices:
        need = next(n for n in shape.needs if n.name == slot.request)
        assert len(slot.indexes) == need.count
        assert all(devices.matches(text, groups[slot.group]).ok for text in need.selectors)


def _within_capacity(p: fleet.Pool) -> None:
    counts = {g.name: g.count for g in p.spec.devicesPerNode}
    for node in p.status.nodes:
        assert node.index < p.spec.nodeCount
        for group, held in node.devices.items():
            assert len(held) == len(set(held)) and all(0 <= i < counts[group] for i in held)
        assert demands.cpu_milli(node.cpu) <= demands.capacity_milli(p.spec.cpu)


@settings(max_examples=60)
@given(fleets(), demand_streams())
def test_the_bucket_search_and_the_plain_scan_place_alike(
    fleet_: tuple[list[fleet.Cluster], list[fleet.Pool]], stream: list[demands.Demand]
) -> None:
    """Same primary outcome per replica, whichever way the tightest pool is found."""
    clusters, pools = fleet_
    fast = run(clusters, pools, stream, search_from=0)
    plain = run(clusters, pools, stream, search_from=1000)
    for (_, a), (_, b) in zip(fast, plain, strict=True):
        assert type(a) is type(b)
