"""What the deployment controller does next with a deployment's replicas: a pure plan.

Given the replicas as they are (`ReplicaView`), the desired count, the current template hash
and the rollout policy, `plan` says which replicas to create and which to delete. It runs
again on every change, so a plan only takes the next safe step; applying it and looking again
is what rolls a deployment forward (level-triggered, as Kubernetes' deployment controller).

Counting rules:
- a replica being deleted still holds its devices, so it counts towards maxSurge until it
  is gone (`leaving`); it never counts as available;
- a moving replica (annotation inferplane.dev/move) is outside the counts: its replacement
  takes its place, and it goes once the replacement is Ready (planned move), exists
  (eviction), or is Ready, unplaceable or failed (preemption: make-before-break only where
  the fleet has room). Replacements are not limited by maxSurge: they replace, they do not surge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferplane.api import deployments, values, wellknown


@dataclass(frozen=True)
class ReplicaView:
    """The facts about one replica that the plan reads."""

    name: str
    template: str
    """Its template-hash label."""
    ready: bool
    """Ready and on a live cluster: it serves."""
    bound: bool = True
    deleting: bool = False
    move: str | None = None
    """The value of its move annotation, if any."""
    replaces: str | None = None
    """The moving replica it was started to replace, if any."""
    created: str = ""
    """Its creationTimestamp (RFC 3339): newer replicas are removed first."""
    cordoned: bool = False
    """Its cluster is cordoned: it should go before replicas where new ones may land."""
    price_per_hour: float = 0.0
    """What it costs (its pool's node price times its nodes)."""
    load: float = 0.0
    """Requests it was last seen running and queueing."""
    stuck: bool = False
    """It cannot be placed (Scheduled=False) or its engine failed."""


@dataclass(frozen=True)
class Plan:
    create: tuple[str | None, ...] = ()
    """One entry per replica to create: the moving replica it replaces, or None."""
    delete: tuple[str, ...] = ()
    """Names of replicas to delete."""


def plan(
    replicas: Sequence[ReplicaView],
    *,
    desired: int,
    template: str,
    rollout: deployments.RolloutSpec,
) -> Plan:
    """The next step towards `desired` replicas of `template`, within the rollout's bounds."""
    live = [r for r in replicas if not r.deleting]
    moving = [r for r in live if r.move]
    active = [r for r in live if not r.move]
    leaving = [r for r in replicas if r.deleting and not r.move]
    replacements, deletes = _moves(moving, active, desired)
    step = _recreate if rollout.strategy == "recreate" else _rolling
    creates, more = step(active, leaving, desired, template, rollout, planned=len(replacements))
    return Plan(tuple(replacements) + (None,) * creates, tuple(deletes + more))


def _moves(
    moving: list[ReplicaView], active: list[ReplicaView], desired: int
) -> tuple[list[str], list[str]]:
    """Replacements to start for moving replicas, and moving replicas that may go now."""
    replacement = {r.replaces: r for r in active if r.replaces}
    room = desired - len(active)
    creates: list[str] = []
    deletes: list[str] = []
    for replica in sorted(moving, key=lambda r: r.name):
        found = replacement.get(replica.name)
        evicted = replica.move == wellknown.MOVE_EVICT
        preempted = replica.move == wellknown.MOVE_PREEMPT
        if found is not None:
            if found.ready or evicted or (preempted and found.stuck):
                deletes.append(replica.name)
        elif room > 0:
            creates.append(replica.name)
            room -= 1
            if evicted:
                deletes.append(replica.name)
        else:
            deletes.append(replica.name)  # the desired count is met without it
    return creates, deletes


def surge_and_unavailable(rollout: deployments.RolloutSpec, desired: int) -> tuple[int, int]:
    """maxSurge (rounded up) and maxUnavailable (rounded down) as counts; never both 0."""
    surge = values.resolve_int_or_percent(rollout.maxSurge, desired, round_up=True)
    unavailable = values.resolve_int_or_percent(rollout.maxUnavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # e.g. maxUnavailable 10% of 3: round to 0 and nothing could move
    return surge, unavailable


def _rolling(
    active: list[ReplicaView],
    leaving: list[ReplicaView],
    desired: int,
    template: str,
    rollout: deployments.RolloutSpec,
    *,
    planned: int,
) -> tuple[int, list[str]]:
    surge, unavailable = surge_and_unavailable(rollout, desired)
    new = [r for r in active if r.template == template]
    old = [r for r in active if r.template != template]
    total = len(active) + len(leaving) + planned
    creates = 0
    deletes: list[str] = []
    if len(new) + planned < desired:
        creates = max(0, min(desired - len(new) - planned, desired + surge - total))
    else:
        deletes = [r.name for r in victims(new)[: len(new) + planned - desired]]
    available = sum(r.ready for r in active if r.name not in deletes)
    floor = desired - unavailable
    for replica in victims(old):
        if not replica.ready:
            deletes.append(replica.name)  # costs no availability
        elif available > floor:
            deletes.append(replica.name)
            available -= 1
    return creates, deletes


def _recreate(
    active: list[ReplicaView],
    leaving: list[ReplicaView],
    desired: int,
    template: str,
    rollout: deployments.RolloutSpec,
    *,
    planned: int,
) -> tuple[int, list[str]]:
    old = [r.name for r in active if r.template != template]
    if old:
        return 0, old
    if any(r.template != template for r in leaving):
        return 0, []  # every old replica must be gone before a new one starts
    count = len(active) + planned
    if count < desired:
        return desired - count, []
    return 0, [r.name for r in victims(active)[: count - desired]]


def victims(replicas: list[ReplicaView]) -> list[ReplicaView]:
    """The order to remove replicas in on a scale-down: unbound (nothing to drain), then not
    ready (it serves nobody: its engine is starting or failing, or its cluster is NotReady),
    then those on a cordoned cluster, then the most expensive, then the least loaded (fewest
    requests to drain), then the newest. `removal_reason` says which rule chose each."""
    newest_first = sorted(replicas, key=lambda r: (r.created, r.name), reverse=True)
    return sorted(
        newest_first,
        key=lambda r: (r.bound, r.ready, not r.cordoned, -r.price_per_hour, r.load),
    )


def removal_reason(chosen: ReplicaView, others: Sequence[ReplicaView]) -> str:
    """Why `chosen` goes before the replicas that stay (`others`), in words."""
    if not chosen.bound:
        return "not placed yet"
    if not chosen.ready:
        return "not ready"
    if chosen.cordoned and not all(o.cordoned for o in others):
        return "on a cordoned cluster"
    if any(o.price_per_hour < chosen.price_per_hour for o in others):
        return f"the most expensive (${chosen.price_per_hour:g}/h)"
    if any(o.load > chosen.load for o in others):
        return f"the least loaded ({chosen.load:g} requests)"
    return "the newest"


@dataclass(frozen=True)
class Counts:
    """The replica counts a Deployment's status reports."""

    replicas: int
    ready: int
    updated: int
    updated_ready: int
    leaving: int
    """Replicas being deleted (still present), moving ones included."""
    moving: int
    """Replicas being moved that are not yet being deleted."""


def count(replicas: Sequence[ReplicaView], *, template: str) -> Counts:
    live = [r for r in replicas if not r.deleting]
    return Counts(
        replicas=len(live),
        ready=sum(r.ready for r in live),
        updated=sum(r.template == template for r in live),
        updated_ready=sum(r.ready and r.template == template for r in live),
        leaving=len(replicas) - len(live),
        moving=sum(bool(r.move) for r in live),
    )


def phase(
    counts: Counts, *, desired: int, troubled: bool, previous: str | None
) -> deployments.DeploymentPhase:
    """The deployment's one-word state. `troubled`: a replica is failing or unschedulable."""
    if desired == 0:
        return "ScaledToZero" if counts.replicas + counts.leaving == 0 else "Progressing"
    settled = counts.updated == counts.replicas == desired and counts.moving == 0
    if settled and counts.updated_ready >= desired:
        return "Ready"
    if not settled:
        return "Progressing"
    if troubled or previous in ("Ready", "Degraded"):
        return "Degraded"
    return "Progressing"
