"""Per-device accounting, MIG slices, gangs and the four strategies."""

from __future__ import annotations

from inferplane.api import fleet
from inferplane.policy.placement import bindings, decisions, demands, scheduler, state
from tests.unit.policy.fleets import cluster, demand, deployment, gpus, planner, pool, product


def bound(decision: decisions.Decision) -> decisions.Binding:
    assert isinstance(decision, decisions.Scheduled), decision
    return decision.binding


def test_one_gpu_of_eight_leaves_seven_schedulable() -> None:
    s = planner([cluster("eu")], [pool("h100", "eu", nodes=1)])
    dep = deployment(count=1)
    placed = [bound(s.place(demand(dep, i))) for i in range(8)]
    assert [b.devices[0].indexes for b in placed] == [(i,) for i in range(8)]
    assert {b.nodes for b in placed} == {(0,)}
    assert isinstance(s.place(demand(dep, 8)), decisions.Unschedulable)


def test_binpack_fills_the_tightest_node_before_opening_another() -> None:
    s = planner([cluster("eu")], [pool("h100", "eu", nodes=3)])
    assert bound(s.place(demand(deployment("a", count=6)))).nodes == (0,)
    assert bound(s.place(demand(deployment("b", count=4)))).nodes == (1,)
    # 2 free on node 0, 4 on node 1: a 2-GPU replica closes node 0.
    assert bound(s.place(demand(deployment("c", count=2)))).nodes == (0,)
    assert bound(s.place(demand(deployment("d", count=3)))).nodes == (1,)


def test_binpack_prefers_a_pool_in_use_to_an_untouched_one() -> None:
    pools = [pool("a", "eu", nodes=4), pool("b", "us", nodes=1)]
    s = planner([cluster("eu"), cluster("us")], pools)
    assert bound(s.place(demand(deployment("x", count=8)))).pool == "b"  # fewest empty nodes
    assert bound(s.place(demand(deployment("y", count=8)))).pool == "a"
    assert bound(s.place(demand(deployment("z", count=8)))).pool == "a"  # in use now


def test_a_mig_profile_is_a_device_like_any_other() -> None:
    slices = gpus("H100", 7, name="mig-1g10gb", memory="10Gi", migProfile="1g.10gb")
    s = planner([cluster("eu")], [pool("mixed", "eu", gpus("H100", 1), slices, nodes=1)])
    small = deployment(
        "small",
        request="slice",
        selectors=('device.attributes["gpu.nvidia.com"].migProfile == "1g.10gb"',),
    )
    big = deployment(
        "big", selectors=(product("H100"), '!has(device.attributes["gpu.nvidia.com"].migProfile)')
    )
    assert bound(s.place(demand(small))).devices[0].group == "mig-1g10gb"
    assert bound(s.place(demand(big))).devices[0].group == "gpu"


def test_a_gang_takes_whole_nodes_of_one_pool_leader_first() -> None:
    pools = [pool("one", "eu", nodes=1), pool("two", "eu", nodes=2)]
    s = planner([cluster("eu")], pools)
    binding = bound(s.place(demand(deployment(count=8, nodes=2))))
    assert (binding.pool, binding.nodes) == ("two", (0, 1))
    assert [(d.node, d.indexes) for d in binding.devices] == [
        (0, tuple(range(8))),
        (1, tuple(range(8))),
    ]


def test_a_gang_is_never_placed_on_a_cluster_whose_runtime_runs_single_nodes() -> None:
    pools = [pool("two", "laptop", nodes=2), pool("two-k8s", "k8s", nodes=2)]
    clusters = [cluster("laptop", runtime="process"), cluster("k8s")]
    assert bound(planner(clusters, pools).place(demand(deployment(count=8, nodes=2)))).pool == (
        "two-k8s"
    )
    alone = planner(clusters[:1], pools[:1]).place(demand(deployment(count=8, nodes=2)))
    assert isinstance(alone, decisions.Unschedulable)
    assert dict(alone.reasons) == {"run single-node replicas only (runtime process)": 1}
    single = planner(clusters[:1], pools[:1]).place(demand(deployment(count=8)))
    assert bound(single).pool == "two", "a single-node replica still goes there"


def test_several_requests_on_one_node_get_distinct_devices() -> None:
    dep = deployment(count=2)
    two = dep.spec.resources.model_copy(
        update={
            "devices": [
                dep.spec.resources.devices[0],
                dep.spec.resources.devices[0].model_copy(update={"name": "draft", "count": 1}),
            ]
        }
    )
    dep = dep.model_copy(update={"spec": dep.spec.model_copy(update={"resources": two})})
    binding = bound(planner([cluster("eu")], [pool("p", "eu", nodes=1)]).place(demand(dep)))
    assert [(d.request, d.indexes) for d in binding.devices] == [("gpu", (0, 1)), ("draft", (2,))]


def with_status(p: fleet.Pool, *nodes: fleet.NodeAllocation) -> fleet.Pool:
    return p.model_copy(update={"status": fleet.PoolStatus(nodes=list(nodes))})


def test_existing_allocations_in_a_pool_status_are_respected() -> None:
    taken = fleet.NodeAllocation(index=0, devices={"gpu": [0, 1, 2, 3, 4, 5, 6]}, replicas=["x/y"])
    p = pool("p", "eu", nodes=1)
    p = p.model_copy(update={"status": fleet.PoolStatus(nodes=[taken])})
    s = planner([cluster("eu")], [p])
    assert bound(s.place(demand(deployment(count=1)))).devices[0].indexes == (7,)
    assert isinstance(s.place(demand(deployment(count=1), 1)), decisions.Unschedulable)


def test_release_gives_the_devices_back() -> None:
    s = planner([cluster("eu")], [pool("p", "eu", nodes=1)])
    dep = deployment(count=8)
    binding = bound(s.place(demand(dep)))
    assert isinstance(s.decide(demand(dep, 1)), decisions.Unschedulable)
    s.release(binding, replica="team-a/chat-0", deployment="team-a/chat")
    assert bound(s.decide(demand(dep, 1))) == binding


def test_decide_reserves_nothing_and_reserve_refuses_a_taken_device() -> None:
    s = planner([cluster("eu")], [pool("p", "eu", nodes=1)])
    dep = deployment(count=8)
    first = bound(s.decide(demand(dep)))
    assert bound(s.decide(demand(dep, 1))) == first
    s.reserve(first, replica="team-a/chat-0")
    try:
        s.reserve(first, replica="team-a/chat-1")
    except bindings.AllocationError as exc:
        assert "not free" in str(exc)
    else:
        raise AssertionError("a taken device was handed out twice")


def test_spread_goes_round_the_clusters_then_the_label_values() -> None:
    clusters = [cluster("a", region="eu"), cluster("b", region="eu"), cluster("c", region="us")]
    s = planner(clusters, [pool("p", c.metadata.name) for c in clusters])
    dep = deployment(count=1, strategy="spread")
    assert [bound(s.place(demand(dep, i))).cluster for i in range(4)] == ["a", "b", "c", "a"]
    by_region = deployment("r", count=1, strategy="spread", spreadLabel="region")
    regions = [bound(s.place(demand(by_region, i))).cluster for i in range(2)]
    assert {clusters[["a", "b", "c"].index(c)].metadata.labels["region"] for c in regions} == {
        "eu",
        "us",
    }


def test_spread_counts_replicas_already_bound_in_the_snapshot() -> None:
    from inferplane.api import replicas

    existing = replicas.Replica.model_validate(
        {
            "metadata": {"name": "chat-9", "namespace": "team-a"},
            "spec": {
                "deployment": "chat",
                "cluster": "a",
                "pool": "p",
                "model": {"name": "llama", "version": "v1", "source": "hf://m/l"},
            },
        }
    )
    clusters = [cluster("a"), cluster("b")]
    s = planner(clusters, [pool("p", "a"), pool("p", "b")], replicas=[existing])
    assert bound(s.place(demand(deployment(strategy="spread")))).cluster == "b"


def test_cheapest_takes_the_lowest_price_per_replica_hour() -> None:
    pools = [pool("dear", "a", pricePerHour=30.0), pool("cheap", "b", pricePerHour=10.0, nodes=1)]
    s = planner([cluster("a"), cluster("b")], pools)
    dep = deployment(count=8, strategy="cheapest")
    assert bound(s.place(demand(dep))).pool == "cheap"
    decision = s.place(demand(dep, 1))
    assert isinstance(decision, decisions.Scheduled)
    assert (decision.binding.pool, decision.why.split(";")[0]) == (
        "dear",
        "cheapest: $30.00/h per replica",
    )


def test_cached_prefers_clusters_holding_the_weights() -> None:
    cache = fleet.ModelCache.model_validate(
        {
            "metadata": {"name": "llama"},
            "spec": {"model": "llama", "modelNamespace": "team-a"},
            "status": {
                "clusters": [
                    {"cluster": "b", "phase": "Ready"},
                    {"cluster": "c", "phase": "Downloading"},
                ]
            },
        }
    )
    clusters = [cluster("a"), cluster("b"), cluster("c")]
    s = planner(clusters, [pool("p", c.metadata.name, nodes=1) for c in clusters], caches=[cache])
    dep = deployment(count=8, strategy="cached")
    first = s.place(demand(dep))
    assert isinstance(first, decisions.Scheduled)
    assert first.binding.cluster == "b" and first.why.startswith("cached: weights Ready in b")
    second = s.place(demand(dep, 1))
    assert isinstance(second, decisions.Scheduled)
    assert second.binding.cluster == "a" and "no cluster that fits holds the weights" in second.why


def test_a_replica_that_asks_for_no_devices_fits_on_cpu_pools() -> None:
    s = planner([cluster("eu")], [pool("cpu", "eu", nodes=2, devicesPerNode=[], cpu="8")])
    dep = deployment(count=0, cpu="4")
    assert [bound(s.place(demand(dep, i))).nodes for i in range(4)] == [(0,), (0,), (1,), (1,)]
    assert isinstance(s.place(demand(dep, 4)), decisions.Unschedulable)


def test_the_bucket_search_looks_past_a_pool_whose_tight_node_lacks_cpu() -> None:
    """Pool a has a node with exactly 2 GPUs free but no CPU left, so its best fit is an
    empty node (6 left over); pool b's node leaves 1. The search must not stop at a."""
    starved = fleet.NodeAllocation(index=0, devices={"gpu": list(range(6))}, cpu="8")
    half = fleet.NodeAllocation(index=0, devices={"gpu": list(range(5))}, cpu="1")
    pools = [
        with_status(pool("a", "eu", nodes=2, cpu="8"), starved),
        with_status(pool("b", "eu", nodes=1, cpu="8"), half),
    ]
    s = scheduler.Scheduler(state.Snapshot([cluster("eu")], pools), search_from=0)
    binding = bound(s.place(demand(deployment("x", count=2, cpu="1"))))
    assert (binding.pool, binding.nodes) == ("b", (0,))


def test_the_bucket_search_settles_a_tie_on_leftover_as_the_plain_scan_does() -> None:
    """Found by hypothesis (test_properties). After two gangs, a 1-GPU replica leaves 1 GPU
    free either on the last, empty node of `twos` or on a half-used node of `fours`: a tie on
    leftover that binpack settles for `fours`, where no node is empty. The bucket search used
    to stop at the first fit that reached its bound, `twos`, so the third gang then found
    `fours` whole and was placed by the search but not by the plain scan."""
    a100 = (product("A100"),)
    pools = [
        pool("twos", "eu", gpus("A100", 2), nodes=3),
        pool("fours", "us", gpus("A100", 4), nodes=2),
    ]
    gang = deployment("gang", count=2, nodes=2, selectors=a100)
    stream = [demand(gang, 0), demand(gang, 1), demand(deployment("one", selectors=a100))]
    for search_from in (0, 1000):
        snapshot = state.Snapshot([cluster("eu"), cluster("us")], pools)
        s = scheduler.Scheduler(snapshot, search_from=search_from)
        placed = [bound(s.place(d)) for d in stream]
        assert [(b.pool, b.nodes) for b in placed] == [
            ("twos", (0, 1)),
            ("fours", (0, 1)),
            ("fours", (0,)),
        ]
        assert isinstance(s.place(demand(gang, 2)), decisions.Unschedulable)


def test_the_bucket_search_counts_what_a_second_request_takes_from_the_first_ones_group() -> None:
    """Pool x's node has 3 A100s free: the 1-GPU request and the 2-GPU one both take A100s,
    leaving 0. Pool y's node has 2 A100s and 2 H100s: the 2-GPU request goes to the H100s,
    leaving 1 A100. The search meets y first (2 free is closer to 1) and must not take it
    for the tightest fit, as if the first request alone drew from its group."""
    used = fleet.NodeAllocation(index=0, devices={"a": [0]}, replicas=["team-a/old"])
    pools = [
        with_status(pool("x", "eu", gpus("A100", 4, name="a"), nodes=1), used),
        pool("y", "eu", gpus("A100", 2, name="a"), gpus("H100", 2, name="b"), nodes=1),
    ]
    any_gpu = 'device.driver == "gpu.nvidia.com"'
    needs = (
        demands.DeviceNeed("main", 1, (product("A100"),)),
        demands.DeviceNeed("draft", 2, (any_gpu,)),
    )
    replica = demands.Demand("team-a/r", demands.Shape(needs=needs))
    for search_from in (0, 1000):
        s = scheduler.Scheduler(state.Snapshot([cluster("eu")], pools), search_from=search_from)
        binding = bound(s.place(replica))
        assert (binding.pool, [(d.group, d.indexes) for d in binding.devices]) == (
            "x",
            [("a", (1,)), ("a", (2, 3))],
        )
