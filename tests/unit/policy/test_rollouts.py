"""The deployment controller's plan: scaling, rolling within bounds, recreate, moves.

The properties drive a small simulated world: apply the plan, let some replicas turn Ready
and some deleted ones finish going, plan again, and check the bounds after every step.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from inferplane.api import deployments, wellknown
from inferplane.policy import rollouts
from inferplane.policy.rollouts import ReplicaView

ROLLING = deployments.RolloutSpec()


def views(template: str, count: int, *, ready: bool = True, prefix: str = "r") -> list[ReplicaView]:
    return [
        ReplicaView(name=f"{prefix}{i}", template=template, ready=ready, created=f"t{i:03d}")
        for i in range(count)
    ]


def test_scale_up_creates_the_missing_replicas() -> None:
    step = rollouts.plan(views("a", 1), desired=3, template="a", rollout=ROLLING)
    assert step == rollouts.Plan(create=(None, None))


def test_scale_down_removes_unbound_then_unready_then_newest() -> None:
    current = [
        ReplicaView("old-ready", "a", ready=True, created="t1"),
        ReplicaView("new-ready", "a", ready=True, created="t3"),
        ReplicaView("starting", "a", ready=False, created="t0"),
        ReplicaView("pending", "a", ready=False, bound=False, created="t0"),
    ]
    step = rollouts.plan(current, desired=1, template="a", rollout=ROLLING)
    assert step.delete == ("pending", "starting", "new-ready")


def test_rolling_update_surges_first_when_nothing_may_be_unavailable() -> None:
    rollout = deployments.RolloutSpec(maxSurge=1, maxUnavailable=0)
    step = rollouts.plan(views("old", 3), desired=3, template="new", rollout=rollout)
    assert step == rollouts.Plan(create=(None,))


def test_rolling_update_without_surge_stops_one_old_replica_first() -> None:
    rollout = deployments.RolloutSpec(maxSurge=0, maxUnavailable=1)
    step = rollouts.plan(views("old", 3), desired=3, template="new", rollout=rollout)
    assert step.create == () and len(step.delete) == 1


def test_replicas_being_deleted_count_against_the_surge() -> None:
    rollout = deployments.RolloutSpec(maxSurge=1, maxUnavailable=0)
    current = [*views("old", 2), *views("new", 1, prefix="n")]
    current.append(ReplicaView("going", "old", ready=False, deleting=True))
    step = rollouts.plan(current, desired=3, template="new", rollout=rollout)
    assert step.create == (), "the deleting replica still holds its devices"


def test_recreate_waits_for_every_old_replica_to_be_gone() -> None:
    rollout = deployments.RolloutSpec(strategy="recreate")
    first = rollouts.plan(views("old", 2), desired=2, template="new", rollout=rollout)
    assert first == rollouts.Plan(delete=("r0", "r1"))
    going = [ReplicaView("r0", "old", ready=False, deleting=True)]
    assert rollouts.plan(going, desired=2, template="new", rollout=rollout) == rollouts.Plan()
    assert rollouts.plan([], desired=2, template="new", rollout=rollout).create == (None, None)


def test_a_planned_move_waits_for_its_replacement_to_be_ready() -> None:
    moving = ReplicaView("m", "a", ready=True, move=wellknown.MOVE_PLANNED)
    others = views("a", 1)
    first = rollouts.plan([moving, *others], desired=2, template="a", rollout=ROLLING)
    assert first == rollouts.Plan(create=("m",))
    starting = ReplicaView("x", "a", ready=False, replaces="m")
    waiting = rollouts.plan([moving, starting, *others], desired=2, template="a", rollout=ROLLING)
    assert waiting == rollouts.Plan()
    ready = replace(starting, ready=True)
    done = rollouts.plan([moving, ready, *others], desired=2, template="a", rollout=ROLLING)
    assert done == rollouts.Plan(delete=("m",))


def test_a_preempted_replica_waits_for_a_replacement_that_can_be_placed_only() -> None:
    preempted = ReplicaView("m", "a", ready=True, move=wellknown.MOVE_PREEMPT)
    first = rollouts.plan([preempted], desired=1, template="a", rollout=ROLLING)
    assert first == rollouts.Plan(create=("m",))  # make before break
    starting = ReplicaView("x", "a", ready=False, bound=False, replaces="m")
    assert rollouts.plan([preempted, starting], desired=1, template="a", rollout=ROLLING) == (
        rollouts.Plan()
    )
    for settled in (replace(starting, ready=True), replace(starting, stuck=True)):
        step = rollouts.plan([preempted, settled], desired=1, template="a", rollout=ROLLING)
        assert step == rollouts.Plan(delete=("m",))  # placed and Ready, or no room: break


def test_an_eviction_deletes_once_the_replacement_exists() -> None:
    evicted = ReplicaView("m", "a", ready=True, move=wellknown.MOVE_EVICT)
    step = rollouts.plan([evicted], desired=1, template="a", rollout=ROLLING)
    assert step == rollouts.Plan(create=("m",), delete=("m",))


def test_a_move_beyond_the_desired_count_just_goes() -> None:
    moving = ReplicaView("m", "a", ready=True, move=wellknown.MOVE_PLANNED)
    step = rollouts.plan([moving, *views("a", 2)], desired=2, template="a", rollout=ROLLING)
    assert step == rollouts.Plan(delete=("m",))


def test_phase() -> None:
    counts = rollouts.Counts(3, 3, 3, 3, 0, 0)
    assert rollouts.phase(counts, desired=3, troubled=False, previous=None) == "Ready"
    short = rollouts.Counts(3, 2, 3, 2, 0, 0)
    assert rollouts.phase(short, desired=3, troubled=False, previous="Ready") == "Degraded"
    assert rollouts.phase(short, desired=3, troubled=False, previous="Pending") == "Progressing"
    assert rollouts.phase(short, desired=3, troubled=True, previous="Pending") == "Degraded"
    rolling = rollouts.Counts(4, 3, 1, 1, 0, 0)
    assert rollouts.phase(rolling, desired=3, troubled=False, previous="Ready") == "Progressing"
    gone = rollouts.Counts(0, 0, 0, 0, 0, 0)
    assert rollouts.phase(gone, desired=0, troubled=False, previous="Ready") == "ScaledToZero"


# -- a simulated world ------------------------------------------------------------------------


class World:
    """Replicas that start (turn Ready at random) and, once deleted, go away at random."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.replicas: dict[str, ReplicaView] = {}
        self.serial = 0

    def apply(self, step: rollouts.Plan, template: str) -> None:
        for replaces in step.create:
            self.serial += 1
            name = f"new{self.serial}"
            self.replicas[name] = ReplicaView(
                name, template, ready=False, replaces=replaces, created=f"t{self.serial:05d}"
            )
        for name in step.delete:
            self.replicas[name] = replace(self.replicas[name], deleting=True, ready=False)

    def tick(self) -> None:
        for name, replica in list(self.replicas.items()):
            if replica.deleting and self.rng.random() < 0.5:
                del self.replicas[name]
            elif not replica.ready and not replica.deleting and self.rng.random() < 0.5:
                self.replicas[name] = replace(replica, ready=True)

    def counts(self) -> tuple[int, int]:
        """(replicas present, not moving), (Ready and not deleting)."""
        present = [r for r in self.replicas.values() if not r.move]
        return len(present), sum(r.ready and not r.deleting for r in self.replicas.values())


int_or_percent = st.one_of(st.integers(0, 3), st.sampled_from(["0%", "25%", "50%", "100%"]))


@given(
    desired=st.integers(1, 6),
    surge=int_or_percent,
    unavailable=int_or_percent,
    seed=st.integers(0, 10_000),
)
def test_a_rolling_update_never_leaves_its_bounds_and_finishes(
    desired: int, surge: int | str, unavailable: int | str, seed: int
) -> None:
    if surge in (0, "0%") and unavailable in (0, "0%"):
        surge = 1
    rollout = deployments.RolloutSpec(maxSurge=surge, maxUnavailable=unavailable)
    most, fewest = rollouts.surge_and_unavailable(rollout, desired)
    world = World(seed)
    world.replicas = {v.name: v for v in views("old", desired)}
    for _ in range(500):
        world.apply(
            rollouts.plan(
                list(world.replicas.values()), desired=desired, template="new", rollout=rollout
            ),
            "new",
        )
        present, ready = world.counts()
        assert present <= desired + most
        assert ready >= desired - fewest
        if (
            present == desired
            and ready == desired
            and all(r.template == "new" for r in world.replicas.values())
        ):
            return
        world.tick()
    raise AssertionError(f"no progress: {world.replicas}")


@given(desired=st.integers(0, 6), start=st.integers(0, 8), seed=st.integers(0, 10_000))
def test_scaling_converges_to_the_desired_count(desired: int, start: int, seed: int) -> None:
    world = World(seed)
    world.replicas = {v.name: v for v in views("a", start)}
    for _ in range(500):
        step = rollouts.plan(
            list(world.replicas.values()), desired=desired, template="a", rollout=ROLLING
        )
        world.apply(step, "a")
        live = [r for r in world.replicas.values() if not r.deleting]
        if len(world.replicas) == desired and all(r.ready for r in live):
            return
        world.tick()
    raise AssertionError(f"no convergence: {world.replicas}")


@given(desired=st.integers(1, 6), moved=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_planned_moves_never_lower_the_ready_count(desired: int, moved: int, seed: int) -> None:
    world = World(seed)
    world.replicas = {v.name: v for v in views("a", desired)}
    for name in list(world.replicas)[:moved]:
        world.replicas[name] = replace(world.replicas[name], move=wellknown.MOVE_PLANNED)
    for _ in range(500):
        current = list(world.replicas.values())
        world.apply(rollouts.plan(current, desired=desired, template="a", rollout=ROLLING), "a")
        ready = sum(r.ready and not r.deleting for r in world.replicas.values())
        assert ready >= desired, "a replica went before its replacement was Ready"
        if len(world.replicas) == desired and not any(r.move for r in world.replicas.values()):
            return
        world.tick()
    raise AssertionError(f"the moves never finished: {world.replicas}")


def test_a_scale_down_removes_cordoned_then_expensive_then_idle_replicas_and_says_why() -> None:
    """Issue 13, item 6: which replica goes first is a policy with a reason."""
    cheap_busy = ReplicaView("cheap-busy", "a", ready=True, created="t1", price_per_hour=1, load=5)
    cheap_idle = ReplicaView("cheap-idle", "a", ready=True, created="t0", price_per_hour=1, load=0)
    dear = ReplicaView("dear", "a", ready=True, created="t0", price_per_hour=4, load=9)
    fenced = ReplicaView("fenced", "a", ready=True, created="t0", cordoned=True, price_per_hour=1)
    replicas = [cheap_busy, cheap_idle, dear, fenced]
    order = [v.name for v in rollouts.victims(replicas)]
    assert order == ["fenced", "dear", "cheap-idle", "cheap-busy"]
    reasons = []
    left = list(replicas)
    for name in order[:-1]:
        chosen = next(v for v in left if v.name == name)
        left.remove(chosen)
        reasons.append(rollouts.removal_reason(chosen, left))
    assert reasons == [
        "on a cordoned cluster",
        "the most expensive ($4/h)",
        "the least loaded (0 requests)",
    ]
    step = rollouts.plan(replicas, desired=2, template="a", rollout=ROLLING)
    assert set(step.delete) == {"fenced", "dear"}
