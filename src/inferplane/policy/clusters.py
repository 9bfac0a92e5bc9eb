"""Cluster liveness, health and eviction: the one definition of each, pure.

Live. A cluster whose agent reports (phase Ready or Cordoned) and that is not being deleted
is live: its Ready replicas serve, its agent removes its replicas' finalizers, and its
replicas carry the phase their agent reports. Any other cluster's replicas show phase Unknown,
as Kubernetes marks the pods of a NotReady node.

Health. The agent writes only facts (status.lastHeartbeatTime, agentVersion); the phase has
one writer, the cluster controller, which derives it here from when it saw the heartbeat last
change, on its own clock: an agent with a skewed clock cannot flap its cluster, and a control
plane that was down gives every cluster that was live a full grace period when it comes back.

Eviction. A cluster NotReady for spec.evictionGraceSeconds (counted from when it became
NotReady, never from before the controller watched it), or deleted, has its replicas marked
`inferplane.dev/move: evict`; a drained one has them marked `inferplane.dev/move: "true"`
(make-before-break). A replica no deployment owns cannot be replaced, and is deleted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from inferplane.api import fleet, replicas, wellknown
from inferplane.api.meta import Condition

LIVE_PHASES = frozenset(("Ready", "Cordoned"))
"""Cluster phases with an agent that reports."""
REPLICA_CONDITION = "ClusterReady"
"""The condition a replica of a cluster that is not live carries, with phase Unknown."""
RECHECK_SLACK = 0.05
"""Seconds added to a computed deadline so the recheck lands after it, not just before."""

EventType = Literal["Normal", "Warning"]


def phase_is_live(phase: str | None) -> bool:
    return phase in LIVE_PHASES


def is_live(cluster: Mapping[str, Any] | None) -> bool:
    """Whether a stored Cluster object (as the API returns it) is live; None (gone) is not."""
    if cluster is None or cluster.get("metadata", {}).get("deletionTimestamp"):
        return False
    return phase_is_live((cluster.get("status") or {}).get("phase"))


# -- health -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """What the heartbeat says: the status to store and the Event to record, if any."""

    status: fleet.ClusterStatus
    event: tuple[EventType, str, str] | None
    recheck_after: float | None
    """Seconds until the heartbeat goes stale, when it is fresh now."""


def assess(cluster: fleet.Cluster, *, heard: datetime | None, now: datetime) -> Health:
    """The cluster's health at `now`, given when (the controller's clock) its heartbeat was
    last seen to change; `heard` is None when no heartbeat counts (none yet, or only the one
    found on a cluster that was NotReady already)."""
    status = cluster.status.model_copy(deep=True)
    grace = cluster.spec.heartbeatGraceSeconds
    silent = math.inf if heard is None else (now - heard).total_seconds()
    if silent > grace:
        if status.phase == "Pending":
            return Health(status, None, None)  # never heard from: nothing was lost
        was_live = phase_is_live(status.phase)
        status.phase = "NotReady"
        _set_ready(status, False, now=now, grace=grace)
        if not was_live:
            return Health(status, None, None)
        message = f"no heartbeat from the agent for more than {grace:g}s"
        return Health(status, ("Warning", "ClusterNotReady", message), None)
    status.phase = "Cordoned" if cluster.spec.cordoned else "Ready"
    changed = _set_ready(status, True, now=now, grace=grace)
    event: tuple[EventType, str, str] | None = None
    if changed:
        event = ("Normal", "ClusterReady", "the agent is heartbeating")
    return Health(status, event, grace - silent + RECHECK_SLACK)


def counts_on_first_sight(cluster: fleet.Cluster) -> bool:
    """Whether a heartbeat found on a cluster seen for the first time (a controller that
    just started) counts as heard now: yes for a live or newly joined cluster (a full grace
    period), no for a NotReady one, which only a new heartbeat brings back."""
    return cluster.status.phase != "NotReady"


def _set_ready(status: fleet.ClusterStatus, ready: bool, *, now: datetime, grace: float) -> bool:
    before = status.condition("Ready")
    condition = Condition(
        type="Ready",
        status="True" if ready else "False",
        reason="AgentHeartbeat" if ready else "HeartbeatMissed",
        message="the agent is heartbeating"
        if ready
        else f"no heartbeat from the agent for more than {grace:g}s",
    )
    status.set_condition(condition, now=now)
    return before is None or before.status != condition.status


# -- eviction and drain -------------------------------------------------------------------------


def eviction_time(cluster: fleet.Cluster, *, watched_since: datetime) -> datetime | None:
    """When a NotReady cluster's replicas are to be re-placed; None while it is not NotReady.

    The grace runs from when the cluster became NotReady, but never from before the
    controller started watching it (a restarted control plane gives agents time to return).
    """
    if cluster.status.phase != "NotReady":
        return None
    condition = cluster.status.condition("Ready")
    since = condition.lastTransitionTime if condition is not None else None
    start = max(_aware(since), watched_since) if since is not None else watched_since
    return start + timedelta(seconds=cluster.spec.evictionGraceSeconds)


def needs_move(annotations: Mapping[str, str], how: str) -> bool:
    """Whether a replica still has to be marked to move `how`: an eviction outranks every
    other move, and a preemption outranks a planned one (a preempted replica must go even
    where its replacement cannot be placed), so neither is ever re-marked as less."""
    current = annotations.get(wellknown.MOVE_ANNOTATION)
    if current in (how, wellknown.MOVE_EVICT):
        return False
    return not (current == wellknown.MOVE_PREEMPT and how == wellknown.MOVE_PLANNED)


def drained(left: int) -> Condition:
    """Condition Drained of a draining cluster with `left` replicas still on it."""
    done = left == 0
    return Condition(
        type="Drained",
        status="True" if done else "False",
        reason="Drained" if done else "MovingReplicas",
        message="no replica left on the cluster"
        if done
        else f"{left} replicas left to move off the cluster",
    )


# -- the replicas of a cluster that is not live ------------------------------------------------


def unvouched(
    replica: replicas.ReplicaStatus, cluster: str, *, now: datetime
) -> replicas.ReplicaStatus | None:
    """The status of a replica whose cluster is not live: phase Unknown, condition
    ClusterReady=False; None when it says so already."""
    message = f"cluster {cluster} is not ready: no agent reports on this replica"
    held = replica.condition(REPLICA_CONDITION)
    if replica.phase == "Unknown" and held is not None and held.message == message:
        return None
    status = replica.model_copy(deep=True)
    status.phase = "Unknown"
    status.message = message
    condition = Condition(
        type=REPLICA_CONDITION, status="False", reason="ClusterNotReady", message=message
    )
    status.set_condition(condition, now=now)
    return status


def vouched(replica: replicas.ReplicaStatus) -> replicas.ReplicaStatus | None:
    """The status once the cluster is live again: without the condition (the agent reports the
    phase); None when there is nothing to clear."""
    if replica.condition(REPLICA_CONDITION) is None:
        return None
    status = replica.model_copy(deep=True)
    status.conditions = [c for c in status.conditions if c.type != REPLICA_CONDITION]
    return status


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
