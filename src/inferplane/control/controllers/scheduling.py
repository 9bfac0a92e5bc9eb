"""Scheduling controller: binds unbound Replicas to a pool, and unbinds deleted ones.

Binding: build the scheduler's snapshot (Clusters, Pools, ModelCaches, the deployment's bound
replicas), `decide`, write the allocation into the Pool's status with its resourceVersion
(a Conflict or a stale view means: read again and decide again), then record the binding on
the Replica (spec.cluster/pool/nodes/devices, status.phase Scheduled, condition Scheduled). A
replica that fits nowhere gets Scheduled=False with the scheduler's reasons and a Warning
Event FailedScheduling, and is tried again with backoff and whenever the fleet changes.

Unbinding, for a replica being deleted, in this order: the agent finalizer is the agent's to
remove once the engine has stopped, unless the replica never reached an agent (unbound) or
its cluster has no live agent (NotReady, Pending or deleted), in which case this controller
removes it; then the replica's devices are released from its Pool and the release finalizer
goes. Devices are never freed while an engine may still hold them.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
from typing import Any

from inferplane import logs
from inferplane.api import deployments, replicas, wellknown
from inferplane.api.meta import Condition
from inferplane.backoff import Backoff
from inferplane.control.controllers import allocations, victims
from inferplane.control.runtime.controller import Key, RequeueError, Result, Watch
from inferplane.control.runtime.events import EventRecorder, EventType
from inferplane.control.runtime.objects import Clock, Objects, utcnow
from inferplane.policy import clusters as liveness
from inferplane.policy.placement import (
    decisions,
    demands,
    preemption,
    scheduler,
    snapshots,
    state,
)
from inferplane.policy.placement.bindings import AllocationError
from inferplane.store import base as store_base

log = logging.getLogger(__name__)
BIND_ATTEMPTS = 5
"""Fresh snapshots tried in one reconcile when other writers keep changing the pools."""
RETRY = Backoff(base=1.0, cap=60.0)
"""Delay before an unschedulable replica is tried again (fleet changes retry it at once)."""


class SchedulingController:
    name = "scheduling"
    kind = "Replica"
    workers = 1
    """One binding at a time, as Kubernetes' scheduler does: the pool writes are safe with
    more (optimistic concurrency), but soft preferences are not — two replicas decided at
    once each see the other unbound, and `spread` put both in one region."""

    def __init__(
        self,
        objects: Objects,
        recorder: EventRecorder,
        *,
        clock: Clock = utcnow,
        retry: Backoff = RETRY,
    ) -> None:
        self._objects = objects
        self._recorder = recorder
        self._clock = clock
        self._retry = retry
        self._pending: dict[Key, int] = {}
        """Unbound replicas and their priorities: a fleet change may let them fit, and
        they are retried highest priority first."""
        self._nominated: dict[Key, tuple[tuple[str, str], int]] = {}
        """Replicas that preempted (or wait for replicas leaving), with the pool they were
        promised and their priority: lower-priority replicas may not bind there meanwhile."""
        self._held: dict[Key, str | None] = {}
        """Deleting replicas waiting for their agent, by cluster: its death releases them."""
        self._failures: dict[Key, int] = {}
        self._fleet: dict[tuple[str, str], Any] = {}
        self.watches = [
            Watch("Replica", self._index),
            Watch("Cluster", self._on_fleet_change),
            Watch("Pool", self._on_fleet_change),
            Watch("ModelCache", self._on_fleet_change),
        ]

    # -- watch mappings -------------------------------------------------------------------------

    async def _index(self, replica: dict[str, Any]) -> list[Key]:
        meta = replica["metadata"]
        key = Key(meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            self._pending.pop(key, None)
        elif replica["spec"].get("cluster") is None:
            self._pending[key] = int(replica["spec"].get("priority") or 0)
        return []  # the runner queues the replica itself

    async def _on_fleet_change(self, obj: dict[str, Any]) -> list[Key]:
        """Pending replicas (and, for a cluster, replicas held for its agent) when something
        the scheduler reads changed; a heartbeat alone changes nothing it reads."""
        name = obj["metadata"]["name"]
        seen = _fleet_signature(obj)
        if self._fleet.get((obj["kind"], name)) == seen:
            return []
        self._fleet[(obj["kind"], name)] = seen
        # The queue is FIFO: the highest priority goes first, so it takes what was freed.
        keys = sorted(self._pending, key=lambda k: (-self._pending[k], k))
        if obj["kind"] == "Cluster":
            keys += sorted(k for k, cluster in self._held.items() if cluster == name)
        return keys

    # -- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> Result:
        obj = await self._objects.get("Replica", key.namespace, key.name)
        if obj is None:
            self._forget(key)
            return Result()
        if obj["metadata"].get("deletionTimestamp"):
            self._pending.pop(key, None)
            self._nominated.pop(key, None)
            return await self._finalize(key, obj)
        if obj["spec"].get("cluster") is not None:
            self._forget(key)
            return Result()
        self._pending[key] = int(obj["spec"].get("priority") or 0)
        return await self._bind(key, obj)

    def _forget(self, key: Key) -> None:
        self._pending.pop(key, None)
        self._nominated.pop(key, None)
        self._held.pop(key, None)
        self._failures.pop(key, None)

    # -- binding --------------------------------------------------------------------------------

    async def _bind(self, key: Key, obj: dict[str, Any]) -> Result:
        replica = replicas.Replica.model_validate(obj)
        demand = await self._demand(replica)
        for _ in range(BIND_ATTEMPTS):
            snapshot, pools = await self._snapshot(replica)
            open_ = self._without_nominated(snapshot, key, replica.spec.priority)
            decision = scheduler.Scheduler(open_).decide(demand)
            if isinstance(decision, decisions.Unschedulable):
                waiting = await self._preempt(key, replica, demand, open_)
                if waiting is not None:
                    return await self._waiting(key, obj, replica, waiting)
                held = len(snapshot.pools) - len(open_.pools)
                note = f"; {held} pool(s) held for higher-priority replicas" if held else ""
                return await self._unschedulable(key, obj, replica, decision, note=note)
            binding = decision.binding
            try:
                pool = pools[(binding.cluster, binding.pool)]
                await allocations.allocate(self._objects, pool, binding, replica=demand.replica)
            except (AllocationError, store_base.ConflictError) as exc:
                # Another writer changed the pool: decide again on a fresh view.
                logs.event(
                    log,
                    "pool changed while binding",
                    level=logging.DEBUG,
                    object=str(key),
                    pool=binding.pool,
                    error=str(exc),
                )
                continue
            try:
                await self._record_binding(replica, decision)
            except (store_base.ConflictError, store_base.NotFoundError):
                # The replica changed (or went) while we bound it: undo, look again.
                await allocations.release(self._objects, binding, replica=demand.replica)
                fresh = await self._objects.get("Replica", key.namespace, key.name)
                if fresh is None or _settled(fresh):
                    return Result()  # gone, deleting, or bound by another scheduler
                obj, replica = fresh, replicas.Replica.model_validate(fresh)
                continue
            self._forget(key)
            return Result()
        raise RequeueError("the pools kept changing while binding", delay=0.1)

    async def _demand(self, replica: replicas.Replica) -> demands.Demand:
        namespace = replica.metadata.namespace or "default"
        owner = await self._objects.get("Deployment", namespace, replica.spec.deployment)
        placement = (
            deployments.Deployment.model_validate(owner).spec.placement
            if owner is not None
            else deployments.PlacementSpec()
        )
        model = replica.spec.model
        # The replica's own resources: during a rollout they may differ from the deployment's.
        shape = demands.shape_of(
            deployments.DeploymentSpec(
                model=model.name, resources=replica.spec.resources, placement=placement
            )
        )
        return demands.Demand(
            replica=f"{namespace}/{replica.metadata.name}",
            shape=shape,
            deployment=f"{namespace}/{replica.spec.deployment}",
            strategy=placement.strategy,
            spread_label=placement.spreadLabel,
            model=demands.ModelRef(namespace, model.name, model.version),
        )

    def _without_nominated(
        self, snapshot: state.Snapshot, key: Key, priority: int
    ) -> state.Snapshot:
        """The snapshot less the pools promised to other replicas of a higher priority."""
        promised = {
            pool for other, (pool, p) in self._nominated.items() if other != key and p > priority
        }
        if not promised:
            return snapshot
        kept = [p for p in snapshot.pools if (p.spec.cluster, p.metadata.name) not in promised]
        return dataclasses.replace(snapshot, pools=kept)

    async def _preempt(
        self,
        key: Key,
        replica: replicas.Replica,
        demand: demands.Demand,
        snapshot: state.Snapshot,
    ) -> str | None:
        """Evict lower-priority replicas, or wait for leaving ones, so this one fits: what it
        waits for, or None when preemption cannot help and it is simply unschedulable."""
        priority = replica.spec.priority
        bound = [r for r in await self._objects.list("Replica") if r["spec"].get("cluster")]
        lower = any(int(r["spec"].get("priority") or 0) < priority for r in bound)
        if not lower and key not in self._nominated:
            return None
        # Victims only from the replica's own namespace: spec.priority is the tenant's to
        # write, and a tenant must not evict another's replicas by writing 1000. Replicas
        # leaving in any namespace still count as room about to free.
        namespace = replica.metadata.namespace or "default"
        holders = [
            h
            for h in map(preemption.holder_of, bound)
            if h.leaving or h.replica.startswith(f"{namespace}/")
        ]
        floors = await self._floors(bound, priority)
        answer = preemption.preempt(snapshot, demand, priority, holders, floors)
        if answer is None:
            self._nominated.pop(key, None)
            return None
        if isinstance(answer, preemption.Wait):
            self._nominated[key] = (answer.pool, priority)
            return f"waiting for replicas leaving {'/'.join(answer.pool)}"
        self._nominated[key] = ((answer.binding.cluster, answer.binding.pool), priority)
        await victims.evict(self._objects, self._recorder, replica, answer, now=self._clock())
        names = ", ".join(v.replica for v in answer.victims)
        return f"preempting {names} on {answer.binding.cluster}/{answer.binding.pool}"

    async def _waiting(
        self, key: Key, obj: dict[str, Any], replica: replicas.Replica, message: str
    ) -> Result:
        """Pending with a promise: status says for what; retried when the pool frees."""
        status = replica.status.model_copy(deep=True)
        status.phase = "Pending"
        condition = Condition(
            type="Scheduled", status="False", reason="Preempting", message=message
        )
        if status.set_condition(condition, now=self._clock()):
            await self._objects.write_status(obj, _dump(status))
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        return Result(requeue_after=self._retry.delay(failures))

    async def _floors(self, bound: list[dict[str, Any]], priority: int) -> dict[str, int]:
        """Per deployment with lower-priority replicas: how many may go before it falls
        below its minReplicas."""
        owners = {
            (r["metadata"]["namespace"], r["spec"]["deployment"])
            for r in bound
            if int(r["spec"].get("priority") or 0) < priority
        }
        floors: dict[str, int] = {}
        for namespace, name in sorted(owners):
            owner = await self._objects.get("Deployment", namespace, name)
            peers = [
                r
                for r in bound
                if r["metadata"]["namespace"] == namespace and r["spec"]["deployment"] == name
            ]
            floors[f"{namespace}/{name}"] = preemption.floor_of(owner, peers)
        return floors

    async def _snapshot(
        self, replica: replicas.Replica
    ) -> tuple[state.Snapshot, dict[tuple[str, str], dict[str, Any]]]:
        clusters, pools, caches, peers = await asyncio.gather(
            self._objects.list("Cluster"),
            self._objects.list("Pool"),
            self._objects.list("ModelCache"),
            self._objects.list("Replica", replica.metadata.namespace),
        )
        owner = (replica.metadata.namespace or "default", replica.spec.deployment)
        snapshot = snapshots.snapshot_of(clusters, pools, caches, peers, deployments={owner})
        by_key = {(p["spec"]["cluster"], p["metadata"]["name"]): p for p in pools}
        return snapshot, by_key

    async def _record_binding(
        self, replica: replicas.Replica, decision: decisions.Scheduled
    ) -> None:
        binding = decision.binding
        where = f"{binding.cluster}/{binding.pool} node {','.join(map(str, binding.nodes))}"
        status = replica.status.model_copy(deep=True)
        status.phase = "Scheduled"
        status.set_condition(
            Condition(
                type="Scheduled", status="True", reason="Scheduled", message=f"bound to {where}"
            ),
            now=self._clock(),
        )
        spec = replica.spec.model_copy(update=binding.replica_fields())
        stored = await self._objects.update(
            replica.model_copy(update={"spec": spec, "status": status}).to_dict()
        )
        await self._event(stored, "Normal", "Scheduled", f"bound to {where} ({decision.why})")

    async def _unschedulable(
        self,
        key: Key,
        obj: dict[str, Any],
        replica: replicas.Replica,
        decision: decisions.Unschedulable,
        *,
        note: str = "",
    ) -> Result:
        message = decision.message + note
        if decision.errors:
            message += "; selector errors: " + "; ".join(decision.errors)
        status = replica.status.model_copy(deep=True)
        status.phase = "Pending"
        condition = Condition(
            type="Scheduled", status="False", reason="Unschedulable", message=message
        )
        status.set_condition(condition, now=self._clock())
        stored = await self._objects.write_status(obj, _dump(status))
        await self._event(stored, "Warning", "FailedScheduling", message)
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        return Result(requeue_after=self._retry.delay(failures))

    # -- unbinding ------------------------------------------------------------------------------

    async def _finalize(self, key: Key, obj: dict[str, Any]) -> Result:
        finalizers = obj["metadata"].get("finalizers") or []
        cluster = obj["spec"].get("cluster")
        if wellknown.AGENT_STOP_FINALIZER in finalizers:
            if await self._agent_live(cluster):
                self._held[key] = cluster
                return Result()  # its agent drains the engine and removes the finalizer
            obj = await self._remove_finalizer(obj, wellknown.AGENT_STOP_FINALIZER)
            if cluster is not None:
                message = f"cluster {cluster} has no live agent: not waiting for the engine to stop"
                await self._event(obj, "Warning", "AgentGone", message)
        self._held.pop(key, None)
        if wellknown.RELEASE_DEVICES_FINALIZER in (obj["metadata"].get("finalizers") or []):
            binding = decisions.binding_of(replicas.ReplicaSpec.model_validate(obj["spec"]))
            if binding is not None:
                await allocations.release(self._objects, binding, replica=str(key))
            await self._remove_finalizer(obj, wellknown.RELEASE_DEVICES_FINALIZER)
        self._forget(key)
        return Result()

    async def _agent_live(self, cluster: str | None) -> bool:
        if cluster is None:
            return False  # never bound: no agent ever saw it
        return liveness.is_live(await self._objects.get("Cluster", "", cluster))

    async def _remove_finalizer(self, obj: dict[str, Any], finalizer: str) -> dict[str, Any]:
        updated = copy.deepcopy(obj)
        meta = updated["metadata"]
        meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != finalizer]
        return await self._objects.update(updated)

    async def _event(self, obj: dict[str, Any], type_: EventType, reason: str, text: str) -> None:
        await self._recorder.emit(obj, type_, reason, text, now=self._clock())


def _settled(replica: dict[str, Any]) -> bool:
    """Nothing left to bind: the replica is being deleted or already bound."""
    return bool(replica["metadata"].get("deletionTimestamp") or replica["spec"].get("cluster"))


def _dump(status: replicas.ReplicaStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", exclude_none=True)


def _fleet_signature(obj: dict[str, Any]) -> Any:
    """What the scheduler reads of a Cluster, Pool or ModelCache (not heartbeat times)."""
    status = obj.get("status") or {}
    if obj["kind"] == "Cluster":
        meta = obj["metadata"]
        gone = meta.get("deletionTimestamp")
        return (status.get("phase"), obj.get("spec"), meta.get("labels"), meta.get("uid"), gone)
    if obj["kind"] == "Pool":
        return (obj.get("spec"), status.get("nodes"), obj["metadata"].get("uid"))
    return status.get("clusters")
