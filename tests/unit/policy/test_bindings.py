"""Bindings written into a Pool's status, and two schedulers racing through the real store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferplane import store as store_pkg
from inferplane.api import fleet
from inferplane.policy.placement import bindings, decisions, scheduler, state
from tests.unit.policy.fleets import cluster, demand, deployment, planner, pool


def bound(decision: decisions.Decision) -> decisions.Binding:
    assert isinstance(decision, decisions.Scheduled), decision
    return decision.binding


def test_allocate_records_devices_cpu_memory_and_free_nodes() -> None:
    p = pool("p", "eu", nodes=2, cpu="32", memory="256Gi")
    dep = deployment(count=3, cpu="4", memory="16Gi")
    binding = bound(planner([cluster("eu")], [p]).place(demand(dep)))
    after = bindings.allocate(p, binding, replica="team-a/chat-0")
    (node,) = after.status.nodes
    assert (node.index, node.devices, node.replicas) == (0, {"gpu": [0, 1, 2]}, ["team-a/chat-0"])
    assert (node.cpu, node.memory, after.status.freeNodes) == ("4", str(16 * 2**30), 1)
    assert p.status.nodes == [], "the pool given is not changed"


def test_a_scheduler_built_from_the_written_status_continues_where_it_stopped() -> None:
    p = pool("p", "eu", nodes=1)
    dep = deployment(count=3)
    for i in range(2):
        binding = bound(planner([cluster("eu")], [p]).place(demand(dep, i)))
        p = bindings.allocate(p, binding, replica=f"team-a/chat-{i}")
    assert p.status.nodes[0].devices == {"gpu": [0, 1, 2, 3, 4, 5]}
    assert isinstance(planner([cluster("eu")], [p]).place(demand(dep, 2)), decisions.Unschedulable)


def test_allocate_refuses_a_binding_from_a_stale_view() -> None:
    p = pool("p", "eu", nodes=1)
    binding = bound(planner([cluster("eu")], [p]).place(demand(deployment(count=4))))
    once = bindings.allocate(p, binding, replica="team-a/a")
    with pytest.raises(bindings.AllocationError, match="already allocated"):
        bindings.allocate(once, binding, replica="team-a/b")
    elsewhere = decisions.Binding("eu", "p", (5,))
    with pytest.raises(bindings.AllocationError, match="no node 5"):
        bindings.allocate(p, elsewhere, replica="team-a/c")


def test_release_frees_and_drops_empty_nodes() -> None:
    p = pool("p", "eu", nodes=1, cpu="8")
    binding = bound(planner([cluster("eu")], [p]).place(demand(deployment(count=2, cpu="2"))))
    held = bindings.allocate(p, binding, replica="team-a/a")
    freed = bindings.release(held, binding, replica="team-a/a")
    assert (freed.status.nodes, freed.status.freeNodes) == ([], 1)
    assert bindings.release(freed, binding, replica="team-a/a") == freed


def test_replica_fields_round_trip_through_the_replica_spec() -> None:
    from inferplane.api import replicas

    binding = bound(planner([cluster("eu")], [pool("p", "eu")]).place(demand(deployment(count=2))))
    spec = replicas.ReplicaSpec.model_validate(
        {"deployment": "chat", "model": {"name": "l", "version": "v1", "source": "hf://a/b"}}
    )
    spec = spec.model_copy(update=binding.replica_fields())
    assert decisions.binding_of(spec) == binding


# -- racing schedulers through the store --------------------------------------------------

REPLICAS_EACH = 10


@pytest.fixture
def store(tmp_path: Path) -> Iterator[store_pkg.Store]:
    opened = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    yield opened
    opened.close()


def _fleet(store: store_pkg.Store) -> None:
    store.create(cluster("eu").model_dump(mode="json", exclude_none=True))
    store.create(pool("p", "eu", nodes=2).model_dump(mode="json", exclude_none=True))


def _place_one(
    store: store_pkg.Store,
    who: str,
    index: int,
    conflicts: list[str],
    rendezvous: threading.Barrier | None = None,
) -> bool:
    """What a scheduling controller does: read, decide, write with the version read; on a
    409 read again and decide again. False when the replica fits nowhere. With a rendezvous,
    both schedulers have read the same version before either writes: a certain race."""
    while True:
        clusters = [fleet.Cluster.model_validate(c) for c in store.list("Cluster")[0]]
        live = store.get("Pool", "", "p")
        current = fleet.Pool.model_validate(live)
        planner = scheduler.Scheduler(state.Snapshot(clusters, [current]))
        decision = planner.decide(demand(deployment(who, count=1), index))
        if not isinstance(decision, decisions.Scheduled):
            return False
        written = bindings.allocate(current, decision.binding, replica=decision.replica)
        body: dict[str, Any] = {**live, "status": written.status.model_dump(mode="json")}
        if rendezvous is not None:
            rendezvous.wait()
            rendezvous = None
        try:
            store.update(body)  # carries the resourceVersion read above
            return True
        except store_pkg.ConflictError:
            conflicts.append(decision.replica)


def test_two_schedulers_racing_never_overcommit(store: store_pkg.Store) -> None:
    _fleet(store)  # 2 nodes × 8 GPUs = 16 devices; 2 × 10 replicas of 1 GPU race for them
    barrier = threading.Barrier(2)
    conflicts: list[str] = []
    placed: dict[str, list[bool]] = {"one": [], "two": []}

    def scheduler_loop(who: str) -> None:
        for i in range(REPLICAS_EACH):
            placed[who].append(_place_one(store, who, i, conflicts, barrier if i == 0 else None))

    threads = [threading.Thread(target=scheduler_loop, args=(who,)) for who in placed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    final = fleet.Pool.model_validate(store.get("Pool", "", "p"))
    held = [(n.index, i) for n in final.status.nodes for i in n.devices.get("gpu", [])]
    assert len(held) == len(set(held)) == 16, "every device handed out exactly once"
    assert sum(sum(v) for v in placed.values()) == 16, "the 4 left over found no room"
    assert len([r for n in final.status.nodes for r in n.replicas]) == 16
    assert conflicts, "the schedulers did race (else this test shows nothing)"
