"""The two levels of filters, and the reasons an unschedulable replica gets, per cluster."""

from __future__ import annotations

from inferplane.policy.placement import decisions
from tests.unit.policy.fleets import cluster, demand, deployment, gpus, planner, pool, product


def unschedulable(decision: decisions.Decision) -> decisions.Unschedulable:
    assert isinstance(decision, decisions.Unschedulable), decision
    return decision


def scheduled(decision: decisions.Decision) -> decisions.Scheduled:
    assert isinstance(decision, decisions.Scheduled), decision
    return decision


def test_the_message_reads_like_kubernetes() -> None:
    clusters = [cluster(f"eu-{i}", region="eu") for i in range(2)]
    clusters += [cluster(f"us-{i}", region="us") for i in range(3)]
    pools = [pool("h", "eu-0", gpus(count=1), nodes=1), pool("h", "eu-1", gpus(count=1), nodes=1)]
    dep = deployment(
        count=2,
        request="h100",
        selectors=(product("H100"),),
        clusterSelector={"matchLabels": {"region": "eu"}},
    )
    decision = unschedulable(planner(clusters, pools).place(demand(dep)))
    assert decision.message == (
        "0/5 clusters available: 3 did not match the cluster selector, "
        "2 had no pool whose nodes hold 2× h100"
    )
    assert sum(count for _, count in decision.reasons) == decision.clusters == 5


def test_cluster_selector_expressions_phase_and_cordon() -> None:
    clusters = [
        cluster("a", tier="prod"),
        cluster("b", tier="dev"),
        cluster("c", tier="prod", phase="NotReady"),
        cluster("d", tier="prod", cordoned=True),
        cluster("e", tier="prod", phase="Cordoned"),
        cluster("f", tier="prod", phase="Pending"),
    ]
    pools = [pool("p", c.metadata.name) for c in clusters]
    expressions = [{"key": "tier", "operator": "In", "values": ["prod"]}]
    dep = deployment(count=8, clusterSelector={"matchExpressions": expressions})
    s = planner(clusters, pools)
    assert [scheduled(s.place(demand(dep, i))).binding.cluster for i in range(2)] == ["a", "a"]
    decision = unschedulable(s.place(demand(dep, 2)))
    assert dict(decision.reasons) == {
        "did not match the cluster selector": 1,
        "were not Ready": 2,
        "were cordoned": 2,
        "had no pool with 8× gpu free": 1,
    }


def test_pool_filters_name_the_nearest_miss_per_cluster() -> None:
    clusters = [cluster(name) for name in ("spot", "dear", "small", "a100", "tiny", "none")]
    pools = [
        pool("p", "spot", spot=True),
        pool("p", "dear", pricePerHour=100.0),
        pool("p", "small", nodes=1),
        pool("p", "a100", gpus("A100")),
        pool("p", "tiny", gpus(count=2)),
    ]
    dep = deployment(
        count=4,
        nodes=2,
        request="h100",
        selectors=(product("H100"),),
        allowSpot=False,
        maxPricePerHour=150.0,
    )
    decision = unschedulable(planner(clusters, pools).place(demand(dep)))
    assert dict(decision.reasons) == {
        "had only spot pools (allowSpot is false)": 1,
        "had no pool within $150.00/h per replica": 1,
        "had no pool of 2 nodes": 1,
        "had no pool with devices matching h100": 1,
        "had no pool whose nodes hold 4× h100 on each of 2 nodes": 1,
        "had no pools": 1,
    }


def test_a_cluster_takes_the_reason_of_its_pool_that_got_furthest() -> None:
    pools = [pool("a100", "eu", gpus("A100")), pool("spot", "eu", spot=True)]
    dep = deployment(count=1, request="h100", selectors=(product("H100"),), allowSpot=False)
    decision = unschedulable(planner([cluster("eu")], pools).place(demand(dep)))
    assert decision.reasons == (("had no pool with devices matching h100", 1),)


def test_selector_errors_are_reported_beside_the_reasons() -> None:
    pools = [pool("amd", "eu", {"name": "gpu", "driver": "amd.com", "attributes": {"x": 1}})]
    dep = deployment(request="h100", selectors=(product("H100"),))
    decision = unschedulable(planner([cluster("eu")], pools).place(demand(dep)))
    assert decision.errors == ("no such member in mapping: 'productName'",)


def test_cpu_and_memory_are_accounted_per_node() -> None:
    pools = [pool("p", "eu", gpus(count=8), nodes=1, cpu="16", memory="64Gi")]
    dep = deployment(count=1, cpu="6", memory="8Gi")
    s = planner([cluster("eu")], pools)
    placed = [s.place(demand(dep, i)) for i in range(3)]
    assert [isinstance(d, decisions.Scheduled) for d in placed] == [True, True, False]
    assert "had no pool with 1× gpu, 6 CPU, 8Gi free" in unschedulable(placed[2]).message
