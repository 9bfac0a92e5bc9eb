"""Preemption: lower priorities only, floors kept while possible, fewest victims, waits."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.policy.placement import bindings, decisions, preemption, scheduler, state
from tests.unit.policy.fleets import cluster, demand, deployment, gpus, pool


@dataclass(frozen=True)
class Held:
    name: str
    gpus: int
    priority: int = 0
    owner: str = "low"
    created: str = "2026-01-01T00:00:00Z"
    leaving: bool = False


def full(*held: Held, pools: int = 1) -> tuple[state.Snapshot, list[preemption.Holder]]:
    """One cluster of `pools` single-node pools of 8 GPUs, holding `held` in order."""
    stored = [pool(f"p{i}", "eu", gpus(count=8), nodes=1) for i in range(pools)]
    clusters = [cluster("eu")]
    holders: list[preemption.Holder] = []
    for h in held:
        books = scheduler.Scheduler(state.Snapshot(clusters, stored))
        placed = books.decide(demand(deployment(h.owner, count=h.gpus)))
        assert isinstance(placed, decisions.Scheduled), h
        binding = placed.binding
        replica = f"team-a/{h.name}"
        index = [p.metadata.name for p in stored].index(binding.pool)
        stored[index] = bindings.allocate(stored[index], binding, replica=replica)
        holders.append(
            preemption.Holder(
                replica, f"team-a/{h.owner}", h.priority, binding, h.created, h.leaving
            )
        )
    return state.Snapshot(clusters, stored), holders


def names(answer: preemption.Answer) -> list[str]:
    assert isinstance(answer, preemption.Preempt), answer
    return sorted(v.replica.split("/")[1] for v in answer.victims)


def test_the_fewest_newest_lower_priority_replicas_go() -> None:
    held = [Held(f"r{i}", 2, created=f"2026-01-01T00:00:0{i}Z") for i in range(4)]
    snapshot, holders = full(*held)
    answer = preemption.preempt(snapshot, demand(deployment("hi", count=4)), 10, holders, {})
    assert names(answer) == ["r2", "r3"]
    assert isinstance(answer, preemption.Preempt)
    assert answer.binding.pool == "p0"


def test_equal_or_higher_priority_is_never_evicted() -> None:
    snapshot, holders = full(Held("a", 4, priority=10), Held("b", 4, priority=20))
    hi = demand(deployment("hi", count=4))
    assert preemption.preempt(snapshot, hi, 10, holders, {}) is None
    assert names(preemption.preempt(snapshot, hi, 11, holders, {})) == ["a"]


def test_the_lowest_priority_goes_first() -> None:
    snapshot, holders = full(Held("a", 4, priority=-5), Held("b", 4, priority=0))
    answer = preemption.preempt(snapshot, demand(deployment("hi", count=4)), 10, holders, {})
    assert names(answer) == ["a"]


def test_a_replica_above_its_floor_goes_before_one_below() -> None:
    # "b" is lower and newer, but its deployment is at its minimum; "a"'s has one to spare.
    snapshot, holders = full(
        Held("a", 4, owner="spare", created="2026-01-01T00:00:00Z"),
        Held("b", 4, owner="tight", priority=-1, created="2026-01-01T00:00:09Z"),
    )
    floors = {"team-a/spare": 1, "team-a/tight": 0}
    answer = preemption.preempt(snapshot, demand(deployment("hi", count=4)), 10, holders, floors)
    assert names(answer) == ["a"]
    assert isinstance(answer, preemption.Preempt) and answer.below_floor == 0


def test_below_a_floor_only_when_nothing_else_frees_room() -> None:
    snapshot, holders = full(Held("a", 8, owner="tight"))
    answer = preemption.preempt(
        snapshot, demand(deployment("hi", count=4)), 10, holders, {"team-a/tight": 0}
    )
    assert names(answer) == ["a"]
    assert isinstance(answer, preemption.Preempt) and answer.below_floor == 1


def test_a_victim_not_needed_is_spared() -> None:
    # Newest first takes "y" (1 GPU) then "x" (4); with "x" gone, "y" can stay.
    snapshot, holders = full(
        Held("x", 4, created="2026-01-01T00:00:00Z"),
        Held("z", 3, priority=5, created="2026-01-01T00:00:01Z"),
        Held("y", 1, created="2026-01-01T00:00:02Z"),
    )
    answer = preemption.preempt(snapshot, demand(deployment("hi", count=4)), 10, holders, {})
    assert names(answer) == ["x"]


def test_replicas_already_leaving_are_waited_for() -> None:
    snapshot, holders = full(Held("a", 4, leaving=True), Held("b", 4))
    answer = preemption.preempt(snapshot, demand(deployment("hi", count=4)), 10, holders, {})
    assert answer == preemption.Wait(("eu", "p0"))


def test_the_pool_whose_victims_matter_least_is_chosen() -> None:
    # p0 would lose a priority-5 replica, p1 a priority-0 one.
    snapshot, holders = full(
        Held("mid", 8, priority=5), Held("low", 8, priority=0, owner="other"), pools=2
    )
    answer = preemption.preempt(snapshot, demand(deployment("hi", count=8)), 10, holders, {})
    assert names(answer) == ["low"]
    assert isinstance(answer, preemption.Preempt) and answer.binding.pool == "p1"


def test_nothing_evictable_is_not_preemption() -> None:
    snapshot, holders = full(Held("a", 8))
    too_big = demand(deployment("hi", count=16))  # no pool has 16 GPUs on a node
    assert preemption.preempt(snapshot, too_big, 10, holders, {}) is None


def test_floors_of_stored_deployments() -> None:
    def replica(leaving: bool = False) -> dict[str, object]:
        annotations = {"inferplane.dev/move": "preempt"} if leaving else {}
        return {"metadata": {"annotations": annotations}}

    peers = [replica(), replica(), replica(), replica(leaving=True)]
    fixed = {"spec": {"replicas": 2}}
    scaled = {"spec": {"replicas": 3, "autoscaling": {"minReplicas": 0}}}
    off = {"spec": {"replicas": 3, "autoscaling": {"minReplicas": 0, "enabled": False}}}
    assert preemption.floor_of(fixed, peers) == 1
    assert preemption.floor_of(scaled, peers) == 3
    assert preemption.floor_of(off, peers) == 0
    assert preemption.floor_of(None, peers) == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), st.integers(-3, 3)), min_size=1, max_size=8),
    st.integers(1, 8),
    st.integers(-3, 4),
)
def test_victims_are_lower_and_make_room(
    held: list[tuple[int, int]], wanted: int, priority: int
) -> None:
    fitting: list[Held] = []
    used = 0
    for i, (size, p) in enumerate(held):
        if used + size <= 8:
            fitting.append(Held(f"r{i}", size, priority=p, created=f"2026-01-01T00:00:{i:02}Z"))
            used += size
    snapshot, holders = full(*fitting)
    hi = demand(deployment("hi", count=wanted))
    answer = preemption.preempt(snapshot, hi, priority, holders, {})
    room = 8 - used + sum(h.gpus for h in fitting if h.priority < priority)
    if wanted <= 8 - used:
        assert isinstance(answer, preemption.Wait)  # it fits already
        return
    if room < wanted:
        assert answer is None
        return
    assert isinstance(answer, preemption.Preempt)
    assert all(v.priority < priority for v in answer.victims)
    books = scheduler.Scheduler(snapshot)
    for victim in answer.victims:
        books.release(victim.binding, replica=victim.replica)
    assert isinstance(books.decide(hi), decisions.Scheduled)
    # no victim could be spared
    for victim in answer.victims:
        books.reserve(victim.binding, replica=victim.replica)
        assert isinstance(books.decide(hi), decisions.Unschedulable)
        books.release(victim.binding, replica=victim.replica)


def test_holder_of_a_stored_replica() -> None:
    stored = {
        "metadata": {"name": "r", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "deployment": "chat",
            "model": {"name": "m", "version": "v1", "source": "file:///m"},
            "priority": 3,
            "cluster": "eu",
            "pool": "p0",
            "nodes": [0],
        },
    }
    holder = preemption.holder_of(stored)
    assert (holder.replica, holder.deployment, holder.priority) == ("ns/r", "ns/chat", 3)
    assert (holder.binding.cluster, holder.binding.pool, holder.leaving) == ("eu", "p0", False)
