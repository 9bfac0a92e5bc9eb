"""Cluster controller: heartbeat health, eviction from lost clusters, and drains.

Health. The agent heartbeats by writing status.lastHeartbeatTime; this controller is the one
writer of the phase. It notes, on its own clock, when it last saw that value change, and
`policy.clusters.assess` derives the phase: Ready (or Cordoned) while heard from within
spec.heartbeatGraceSeconds, else NotReady (condition Ready=False, Warning Event). Measuring
on the controller's clock keeps an agent with a skewed clock from flapping, and a control
plane that was down (so no agent could heartbeat) gives every live cluster a full grace
period when it comes back; a cluster NotReady then waits for a new heartbeat.

Eviction. A cluster NotReady for spec.evictionGraceSeconds, or deleted, has its replicas
marked `inferplane.dev/move: evict`: the deployment controller starts each replacement first
and then deletes the old replica, whose agent finalizer the scheduling controller removes
(there is no agent to wait for).

Replica phase. While a cluster is NotReady (or deleted), every replica bound to it shows phase
Unknown with condition ClusterReady=False, as Kubernetes marks the pods of a NotReady node:
no agent vouches for them, so `get replicas` does not say Ready and the endpoint controller
stops routing to them. When the cluster is live again the condition goes and its agent, which
resends any phase it finds changed, reports the real one.

Drain. A cluster annotated `inferplane.dev/drain: "true"` (`inferplane drain`, which also
cordons it) has its replicas marked `inferplane.dev/move: "true"`: make-before-break, the
old replica goes only once its replacement is Ready. Condition Drained says how far it got.
Replicas no deployment owns cannot be replaced and are deleted outright.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from inferplane.api import fleet, replicas, wellknown
from inferplane.control.runtime.controller import Key, Result, Watch
from inferplane.control.runtime.events import EventRecorder, EventType
from inferplane.control.runtime.objects import Clock, Objects, utcnow
from inferplane.policy import clusters as liveness
from inferplane.policy.clusters import RECHECK_SLACK

# -- the controller -----------------------------------------------------------------------------


class ClusterController:
    name = "clusters"
    kind = "Cluster"

    def __init__(self, objects: Objects, recorder: EventRecorder, *, clock: Clock = utcnow) -> None:
        self._objects = objects
        self._recorder = recorder
        self._clock = clock
        self._heard: dict[str, tuple[str | None, datetime | None]] = {}
        """Per cluster: the last heartbeat value seen, and when (our clock) it was seen; None
        for a value found on a NotReady cluster, which does not bring it back."""
        self._watched_since: dict[str, datetime] = {}
        self._attention: set[str] = set()
        """Clusters whose replicas matter to us now: draining, NotReady or deleted."""
        self._vouched: set[str] = set()
        """Live clusters whose replicas were seen to carry no ClusterReady condition."""
        self.watches = [Watch("Replica", self._cluster_of_replica)]

    async def _cluster_of_replica(self, replica: dict[str, Any]) -> list[Key]:
        cluster = replica["spec"].get("cluster")
        return [Key("", cluster)] if cluster in self._attention else []

    async def reconcile(self, key: Key) -> Result:
        name = key.name
        now = self._clock()
        obj = await self._objects.get("Cluster", "", name)
        if obj is None:
            self._heard.pop(name, None)
            self._watched_since.pop(name, None)
            self._vouched.discard(name)
            moved = await self._evict(name, None, why=f"cluster {name} was deleted")
            await self._mark_replicas(name, live=False)
            if moved:
                self._attention.add(name)
            else:
                self._attention.discard(name)
            return Result()
        self._watched_since.setdefault(name, now)
        cluster = fleet.Cluster.model_validate(obj)
        health = liveness.assess(cluster, heard=self._observe(cluster, now), now=now)
        draining = obj["metadata"].get("annotations", {}).get(wellknown.DRAIN_ANNOTATION) == "true"
        if not draining:  # uncordoned: a drain's condition no longer applies
            health.status.conditions = [c for c in health.status.conditions if c.type != "Drained"]
        obj = await self._objects.write_status(obj, _dump(health.status))
        if health.event is not None:
            await self._event(obj, *health.event)
        cluster = fleet.Cluster.model_validate(obj)
        recheck = health.recheck_after
        self._attention.discard(name)
        evict_at = liveness.eviction_time(cluster, watched_since=self._watched_since[name])
        if evict_at is not None:
            self._attention.add(name)
            if now >= evict_at:
                grace = cluster.spec.evictionGraceSeconds
                await self._evict(name, obj, why=f"cluster {name} is NotReady for over {grace:g}s")
            else:
                recheck = _earliest(recheck, (evict_at - now).total_seconds() + RECHECK_SLACK)
        if draining:
            self._attention.add(name)
            await self._drain(obj)
        await self._follow_liveness(name, cluster)
        return Result(requeue_after=recheck)

    async def _follow_liveness(self, name: str, cluster: fleet.Cluster) -> None:
        """Replica phases follow the cluster: Unknown while NotReady, the agent's once live
        (swept once per recovery, and once per cluster when the controller starts)."""
        if cluster.status.phase == "NotReady":
            self._vouched.discard(name)
            await self._mark_replicas(name, live=False)
        elif liveness.phase_is_live(cluster.status.phase) and name not in self._vouched:
            await self._mark_replicas(name, live=True)
            self._vouched.add(name)

    async def _mark_replicas(self, name: str, *, live: bool) -> None:
        now = self._clock()
        for obj in await self._replicas_on(name):
            if obj["metadata"].get("deletionTimestamp"):
                continue  # on its way out: the scheduling controller lets it go
            status = replicas.ReplicaStatus.model_validate(obj.get("status") or {})
            marked = liveness.vouched(status) if live else liveness.unvouched(status, name, now=now)
            if marked is not None:
                await self._objects.write_status(
                    obj, marked.model_dump(mode="json", exclude_none=True)
                )

    def _observe(self, cluster: fleet.Cluster, now: datetime) -> datetime | None:
        """When (our clock) the cluster's current heartbeat value was first seen, if it
        counts (`policy.clusters.counts_on_first_sight` for one found at start)."""
        beat = cluster.status.lastHeartbeatTime
        value = beat.isoformat() if beat is not None else None
        name = cluster.metadata.name
        seen = self._heard.get(name)
        if seen is None:
            counts = liveness.counts_on_first_sight(cluster)
            seen = self._heard[name] = (value, now if counts else None)
        elif seen[0] != value:
            seen = self._heard[name] = (value, now)
        return seen[1] if value is not None else None

    async def _replicas_on(self, cluster: str) -> list[dict[str, Any]]:
        listed = await self._objects.list("Replica")
        return [r for r in listed if r["spec"].get("cluster") == cluster]

    async def _evict(self, name: str, cluster: dict[str, Any] | None, *, why: str) -> int:
        """Mark every replica on the cluster for eviction; how many are still there."""
        on = await self._replicas_on(name)
        marked = 0
        for replica in on:
            if replica["metadata"].get("deletionTimestamp"):
                continue
            if await self._move(replica, wellknown.MOVE_EVICT, why=why):
                marked += 1
        if marked and cluster is not None:
            await self._event(cluster, "Warning", "EvictingReplicas", f"{why}: re-placing replicas")
        return len(on)

    async def _drain(self, cluster: dict[str, Any]) -> None:
        name = cluster["metadata"]["name"]
        on = await self._replicas_on(name)
        for replica in on:
            if not replica["metadata"].get("deletionTimestamp"):
                await self._move(replica, wellknown.MOVE_PLANNED, why=f"cluster {name} is drained")
        status = fleet.ClusterStatus.model_validate(cluster.get("status") or {})
        done = not on
        condition = liveness.drained(len(on))
        before = status.condition("Drained")
        status.set_condition(condition, now=self._clock())
        stored = await self._objects.write_status(cluster, _dump(status))
        if done and (before is None or before.status != "True"):
            await self._event(stored, "Normal", "Drained", "every replica moved off the cluster")

    async def _move(self, replica: dict[str, Any], how: str, *, why: str) -> bool:
        """Annotate the replica to move (or delete it when nothing owns it); False when it
        was marked already."""
        meta = replica["metadata"]
        annotations = meta.get("annotations") or {}
        if not liveness.needs_move(annotations, how):
            return False
        if not await self._owned(replica):
            await self._objects.delete("Replica", meta["namespace"], meta["name"])
            await self._event(replica, "Warning", "Deleted", f"{why}; no deployment replaces it")
            return True
        updated = copy.deepcopy(replica)
        updated["metadata"]["annotations"] = {**annotations, wellknown.MOVE_ANNOTATION: how}
        stored = await self._objects.update(updated)
        reason = "Evicted" if how == wellknown.MOVE_EVICT else "Moving"
        await self._event(stored, "Normal", reason, f"{why}: starting a replacement elsewhere")
        return True

    async def _owned(self, replica: dict[str, Any]) -> bool:
        meta = replica["metadata"]
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("kind") == "Deployment"]
        if not refs:
            return False
        owner = await self._objects.get("Deployment", meta["namespace"], refs[0]["name"])
        return owner is not None and owner["metadata"]["uid"] == refs[0].get("uid")

    async def _event(self, obj: dict[str, Any], type_: EventType, reason: str, text: str) -> None:
        await self._recorder.emit(obj, type_, reason, text, now=self._clock())


def _earliest(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def _dump(status: fleet.ClusterStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", exclude_none=True)
