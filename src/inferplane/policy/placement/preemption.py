"""Preemption: which lower-priority replicas to evict so that a higher-priority one fits.

Asked only for a replica the scheduler found no room for. Pure, like the scheduler: the
snapshot, the demand, its priority and the bound replicas that hold devices in, an answer
out. The rules, as Kubernetes' scheduler applies them to pods, plus a floor per deployment:

- only replicas of strictly lower priority are ever victims (never the reverse, never an
  equal);
- replicas already leaving (being deleted, or marked to move) are counted as gone first: if
  the demand fits once they are, the answer is to wait for them (`Wait`), not to evict more;
- one pool is chosen, and on it the fewest victims that make the demand fit, taken in this
  order: replicas whose deployment stays at or above its floor (its minReplicas) before any
  that takes it below, then the lowest priority, then the newest; a victim found unneeded
  once the others are chosen is spared (the reprieve pass);
- among pools, the one whose victims go below fewer floors, then have the lowest highest
  priority, then are fewest.

Going below a deployment's floor is allowed only because every victim's priority is lower
than the preemptor's, and only when no pool can be freed without it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inferplane.api import replicas, wellknown
from inferplane.policy.placement.decisions import Binding, Scheduled, binding_of
from inferplane.policy.placement.demands import Demand
from inferplane.policy.placement.scheduler import Scheduler
from inferplane.policy.placement.state import Snapshot


@dataclass(frozen=True)
class Holder:
    """A bound replica that holds devices, as preemption sees it."""

    replica: str
    """`namespace/name`, as the pools' allocations name it."""
    deployment: str
    """`namespace/name` of its deployment."""
    priority: int
    binding: Binding
    created: str = ""
    """Its creationTimestamp (RFC 3339): the newest goes first among equals."""
    leaving: bool = False
    """Being deleted or marked to move: its devices are about to be free."""


@dataclass(frozen=True)
class Wait:
    """The demand fits once replicas already leaving are gone: evict nothing more."""

    pool: tuple[str, str]


@dataclass(frozen=True)
class Preempt:
    """Evict these replicas; the demand then fits at `binding`."""

    binding: Binding
    victims: tuple[Holder, ...]
    below_floor: int
    """How many of the victims take their deployment below its minReplicas."""


Answer = Wait | Preempt | None


def holder_of(stored: Mapping[str, Any]) -> Holder:
    """A bound replica, as the resource API returns it, as preemption sees it."""
    spec = replicas.ReplicaSpec.model_validate(stored["spec"])
    binding = binding_of(spec)
    if binding is None:
        raise ValueError("an unbound replica holds nothing")
    meta = stored["metadata"]
    namespace = meta.get("namespace") or "default"
    return Holder(
        replica=f"{namespace}/{meta['name']}",
        deployment=f"{namespace}/{spec.deployment}",
        priority=spec.priority,
        binding=binding,
        created=meta.get("creationTimestamp") or "",
        leaving=_leaving(meta),
    )


def floor_of(deployment: Mapping[str, Any] | None, replicas_of: Sequence[Mapping[str, Any]]) -> int:
    """How many of a deployment's replicas may go before it has fewer than its minimum
    (`autoscaling.minReplicas`, else `replicas`); all of them when the deployment is gone."""
    staying = sum(1 for r in replicas_of if not _leaving(r["metadata"]))
    if deployment is None:
        return staying
    spec = deployment.get("spec") or {}
    autoscaling = spec.get("autoscaling") or {}
    scaled = bool(autoscaling) and autoscaling.get("enabled", True) is not False
    least = autoscaling.get("minReplicas", 1) if scaled else spec.get("replicas", 1)
    return max(0, staying - int(least))


def _leaving(meta: Mapping[str, Any]) -> bool:
    annotations = meta.get("annotations") or {}
    return bool(meta.get("deletionTimestamp") or annotations.get(wellknown.MOVE_ANNOTATION))


def preempt(
    snapshot: Snapshot,
    demand: Demand,
    priority: int,
    holders: Sequence[Holder],
    floors: Mapping[str, int],
) -> Answer:
    """Wait, Preempt, or None when no eviction this policy allows makes the demand fit.

    `floors` is, per deployment, how many of its replicas may go before it falls below its
    minReplicas (its live replicas minus its minimum, never negative)."""
    leaving = [h for h in holders if h.leaving]
    freed = Scheduler(snapshot)
    for holder in leaving:
        freed.release(holder.binding, replica=holder.replica)
    waited = freed.decide(demand)
    if isinstance(waited, Scheduled):
        return Wait((waited.binding.cluster, waited.binding.pool))
    lower = [h for h in holders if not h.leaving and h.priority < priority]
    allowed = {p.key for p in freed.candidates(demand.shape).allowed}
    by_pool: dict[tuple[str, str], list[Holder]] = {}
    for holder in lower:
        key = (holder.binding.cluster, holder.binding.pool)
        if key in allowed:
            by_pool.setdefault(key, []).append(holder)
    best: Preempt | None = None
    for key in sorted(by_pool):
        found = _on_pool(snapshot, demand, leaving, by_pool[key], floors)
        if found is not None and (best is None or _rank(found) < _rank(best)):
            best = found
    return best


def _rank(answer: Preempt) -> tuple[int, int, int]:
    highest = max(v.priority for v in answer.victims)
    return answer.below_floor, highest, len(answer.victims)


def _on_pool(
    snapshot: Snapshot,
    demand: Demand,
    leaving: Sequence[Holder],
    holders: Sequence[Holder],
    floors: Mapping[str, int],
) -> Preempt | None:
    """The fewest victims on one pool, in eviction order, then spared where unneeded."""
    scheduler = Scheduler(snapshot)
    for holder in leaving:
        scheduler.release(holder.binding, replica=holder.replica)
    chosen: list[Holder] = []
    taken: Counter[str] = Counter()
    remaining = list(holders)
    while remaining:
        victim = min(remaining, key=lambda h: _order(h, taken, floors))
        remaining.remove(victim)
        chosen.append(victim)
        taken[victim.deployment] += 1
        scheduler.release(victim.binding, replica=victim.replica)
        if isinstance(scheduler.decide(demand), Scheduled):
            return _reprieve(scheduler, demand, chosen, floors)
    return None


def _order(holder: Holder, taken: Counter[str], floors: Mapping[str, int]) -> tuple[object, ...]:
    below = taken[holder.deployment] >= floors.get(holder.deployment, 0)
    return below, holder.priority, _newest_first(holder.created), holder.replica


def _newest_first(created: str) -> tuple[int, ...]:
    # RFC 3339 in one zone sorts as text; negate code points so the newest sorts first.
    return tuple(-ord(c) for c in created)


def _reprieve(
    scheduler: Scheduler, demand: Demand, chosen: list[Holder], floors: Mapping[str, int]
) -> Preempt:
    """Give back, most valuable first, every victim the demand fits without."""
    kept = list(chosen)
    for holder in sorted(chosen, key=lambda h: (-h.priority, h.created)):
        scheduler.reserve(holder.binding, replica=holder.replica)
        if isinstance(scheduler.decide(demand), Scheduled):
            kept.remove(holder)
        else:
            scheduler.release(holder.binding, replica=holder.replica)
    decision = scheduler.decide(demand)
    if not isinstance(decision, Scheduled):  # cannot happen: each step kept it fitting
        raise RuntimeError(f"preemption lost the fit of {demand.replica}")
    taken: Counter[str] = Counter(v.deployment for v in kept)
    below = sum(max(0, n - floors.get(d, 0)) for d, n in taken.items())
    return Preempt(decision.binding, tuple(kept), below)
