"""Deployment controller: resolves the model version, keeps the replicas, reports progress.

Each reconcile resolves `spec.model` / `spec.modelVersion` (condition ModelResolved), builds
the replica template, plans the next step with `rollouts.plan` (scale, roll within maxSurge /
maxUnavailable or recreate, replace moving replicas), creates and deletes Replicas to carry it
out, and writes the counts, phase and conditions Available and Progressing. A deployment
whose model cannot be resolved keeps the replicas it has: nothing is torn down on a typo.

Creation is bounded twice. A namespace's Quotas (maxReplicas, maxDevices) admit replicas
first: those they hold back wait, with condition QuotaExceeded and a Warning Event, until a
Quota changes or a replica of the namespace goes. And one pass creates at most CREATE_BURST
replicas, in slow-start batches of 1, 2, 4, … as Kubernetes' ReplicaSet does (a batch that
fails stops the pass), then requeues for the rest: a write of spec.replicas=1000 becomes a
steady trickle the scheduler and the API keep up with, not one burst that stalls them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inferplane import logs
from inferplane.api import apikeys, deployments, models, replicas, wellknown
from inferplane.api.meta import Condition
from inferplane.control.controllers import quotas, templates
from inferplane.control.runtime.controller import Key, Result, Watch
from inferplane.control.runtime.events import EventRecorder, EventType
from inferplane.control.runtime.objects import Clock, Objects, utcnow
from inferplane.policy import clusters as liveness
from inferplane.policy import rollouts
from inferplane.store import base as store_base

log = logging.getLogger(__name__)
TROUBLED_PHASES = ("Failed", "CrashLoopBackOff")
NAME_ATTEMPTS = 5
CREATE_BURST = 16
"""Most replicas one reconcile creates; the rest wait for the next pass."""
CREATE_PAUSE_SECONDS = 0.5
"""Pause between passes of a deployment that has more replicas to create."""
QUOTA_CONDITION = "QuotaExceeded"
MOVE_REASONS = {
    wellknown.MOVE_PLANNED: "moved: its replacement is Ready",
    wellknown.MOVE_EVICT: "evicted from a lost cluster",
    wellknown.MOVE_PREEMPT: "preempted by a higher priority",
}


@dataclass(frozen=True)
class _Created:
    held_by: str | None = None
    """Why a Quota held replicas back, when it did."""
    more: bool = False
    """Replicas are left to create past this pass's burst."""


@dataclass(frozen=True)
class _Resolved:
    condition: Condition
    template: replicas.ReplicaSpec | None
    version: str | None


class DeploymentController:
    name = "deployments"
    kind = "Deployment"

    def __init__(
        self,
        objects: Objects,
        recorder: EventRecorder,
        *,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._objects = objects
        self._recorder = recorder
        self._clock = clock
        self._rng = rng or random.Random()
        # Which deployments name which model, so a Model change finds its deployments without
        # a list; fed by Deployment events (in watch order) and by every reconcile.
        self._model_of: dict[Key, Key] = {}
        # What the plan reads of each replica, so a load report (most replica writes) does
        # not wake its deployment; and where each replica runs, for cluster liveness changes.
        self._seen: dict[Key, tuple[Any, ...]] = {}
        self._owner: dict[Key, tuple[Key, str | None]] = {}
        self._cluster_live: dict[str, bool] = {}
        # Deployments a Quota holds back, by namespace: a Quota change or a replica that goes
        # wakes them. Creation in a namespace is serialised, so two deployments never both
        # take the last room.
        self._held: dict[str, set[Key]] = {}
        self._creating: dict[str, asyncio.Lock] = {}
        self.watches = [
            Watch("Deployment", self._index),
            Watch("Model", self._deployments_of_model),
            Watch("Replica", self._deployment_of_replica),
            Watch("Cluster", self._deployments_on_cluster),
            Watch("Quota", self._held_in_namespace),
        ]

    # -- watch mappings -------------------------------------------------------------------------

    async def _index(self, deployment: dict[str, Any]) -> list[Key]:
        meta = deployment["metadata"]
        key = Key(meta["namespace"], meta["name"])
        self._model_of[key] = Key(meta["namespace"], deployment["spec"]["model"])
        return []  # its own key is queued by the runner already

    async def _deployments_of_model(self, model: dict[str, Any]) -> list[Key]:
        meta = model["metadata"]
        wanted = Key(meta["namespace"], meta["name"])
        return [key for key, named in self._model_of.items() if named == wanted]

    async def _deployment_of_replica(self, replica: dict[str, Any]) -> list[Key]:
        meta = replica["metadata"]
        key = Key(meta["namespace"], meta["name"])
        owner = Key(meta["namespace"], replica["spec"]["deployment"])
        seen = _signature(replica)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._seen.pop(key, None)  # gone from the store
            self._owner.pop(key, None)
            return sorted({owner, *self._held.get(key.namespace, ())})
        if self._seen.get(key) == seen:
            return []
        self._seen[key] = seen
        self._owner[key] = (owner, replica["spec"].get("cluster"))
        return [owner]

    async def _deployments_on_cluster(self, cluster: dict[str, Any]) -> list[Key]:
        name = cluster["metadata"]["name"]
        live = liveness.is_live(cluster)
        if self._cluster_live.get(name) == live:
            return []
        self._cluster_live[name] = live
        return sorted({owner for owner, on in self._owner.values() if on == name})

    async def _held_in_namespace(self, quota: dict[str, Any]) -> list[Key]:
        return sorted(self._held.get(quota["metadata"]["namespace"], ()))

    # -- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> Result:
        obj = await self._objects.get("Deployment", key.namespace, key.name)
        if obj is not None and obj["metadata"].get("deletionTimestamp"):
            return Result()  # its replicas go with it: they name it as their owner
        owned, strays = await self._replicas(key, obj)
        for stray in strays:
            # Made for an owner that was deleted in between (its cascade missed it), or for
            # an earlier deployment of the same name.
            await self._objects.delete("Replica", key.namespace, stray["metadata"]["name"])
        if obj is None:
            self._model_of.pop(key, None)
            return Result()
        await self._index(obj)
        deployment = deployments.Deployment.model_validate(obj)
        resolved = await self._resolve(deployment)
        views = await self._views(owned)
        template_hash = templates.template_hash(resolved.template) if resolved.template else ""
        created = _Created()
        if resolved.template is not None:
            step = rollouts.plan(
                views,
                desired=deployment.spec.replicas,
                template=template_hash,
                rollout=deployment.spec.rollout,
            )
            created = await self._carry_out(obj, step, resolved.template, template_hash, views)
        held = self._held.setdefault(key.namespace, set())
        if created.held_by is None:
            held.discard(key)
        else:
            held.add(key)
        await self._write_status(obj, deployment, resolved, owned, views, template_hash, created)
        return Result(requeue_after=CREATE_PAUSE_SECONDS if created.more else None)

    async def _replicas(
        self, key: Key, deployment: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The deployment's replicas, and live ones of its name that it does not own."""
        uid = deployment["metadata"]["uid"] if deployment is not None else None
        owned: list[dict[str, Any]] = []
        strays: list[dict[str, Any]] = []
        for replica in await self._objects.list("Replica", key.namespace):
            if any(o.get("uid") == uid for o in _owners(replica)):
                owned.append(replica)
            elif replica["spec"].get("deployment") == key.name and not replica["metadata"].get(
                "deletionTimestamp"
            ):
                strays.append(replica)
        return owned, strays

    async def _views(self, owned: list[dict[str, Any]]) -> list[rollouts.ReplicaView]:
        clusters = await self._objects.list("Cluster")
        # a Ready replica serves only where an agent vouches for it
        live = {c["metadata"]["name"] for c in clusters if liveness.is_live(c)}
        cordoned = {
            c["metadata"]["name"] for c in clusters if (c.get("spec") or {}).get("cordoned")
        }
        prices = {}
        if any((r.get("spec") or {}).get("pool") for r in owned):
            for pool in await self._objects.list("Pool"):
                prices[pool["metadata"]["name"]] = float(
                    (pool.get("spec") or {}).get("pricePerHour") or 0.0
                )
        return [_view(r, live, cordoned, prices) for r in owned]

    async def _carry_out(
        self,
        deployment: dict[str, Any],
        step: rollouts.Plan,
        template: replicas.ReplicaSpec,
        template_hash: str,
        views: list[rollouts.ReplicaView],
    ) -> _Created:
        namespace = deployment["metadata"]["namespace"]
        if step.create or step.delete:
            logs.event(
                log,
                "rollout step",
                object=f"{namespace}/{deployment['metadata']['name']}",
                template=template_hash,
                create=len(step.create),
                delete=",".join(step.delete) or "-",
            )
        created = _Created()
        if step.create:
            created = await self._create_within_quota(
                deployment, step.create, template, template_hash
            )
        why = _removal_reasons(step.delete, views, template_hash)
        for name in step.delete:
            if await self._objects.delete("Replica", namespace, name) is not None:
                await self._event(
                    deployment, "Normal", "SuccessfulDelete", f"deleted replica {name}{why[name]}"
                )
        return created

    async def _create_within_quota(
        self,
        deployment: dict[str, Any],
        wanted: Sequence[str | None],
        template: replicas.ReplicaSpec,
        template_hash: str,
    ) -> _Created:
        """Create what the namespace's Quotas admit of `wanted`, at most CREATE_BURST of it."""
        namespace = deployment["metadata"]["namespace"]
        async with self._creating.setdefault(namespace, asyncio.Lock()):
            listed = await self._objects.list("Quota", namespace)
            room = quotas.Room(len(wanted))
            if listed:
                usage = quotas.usage_of(await self._objects.list("Replica", namespace))
                room = quotas.room(
                    [apikeys.Quota.model_validate(q) for q in listed],
                    usage,
                    devices_each=quotas.devices_of(template.resources),
                    wanted=len(wanted),
                )
            batch = wanted[: min(room.allowed, CREATE_BURST)]

            async def create(replaces: str | None) -> None:
                await self._create(deployment, template, template_hash, replaces=replaces)

            await _slow_start(batch, create)
        return _Created(held_by=room.held_by, more=room.allowed > len(batch))

    async def _create(
        self,
        deployment: dict[str, Any],
        template: replicas.ReplicaSpec,
        template_hash: str,
        *,
        replaces: str | None,
    ) -> None:
        for attempt in range(NAME_ATTEMPTS):
            name = templates.replica_name(deployment["metadata"]["name"], rng=self._rng)
            obj = templates.new_replica(
                deployment, template, name=name, hash_=template_hash, replaces=replaces
            )
            try:
                await self._objects.create(obj)
            except store_base.AlreadyExistsError:
                if attempt == NAME_ATTEMPTS - 1:
                    raise
                continue
            message = f"created replica {name}" + (f" to replace {replaces}" if replaces else "")
            await self._event(deployment, "Normal", "SuccessfulCreate", message)
            return

    async def _write_status(
        self,
        obj: dict[str, Any],
        deployment: deployments.Deployment,
        resolved: _Resolved,
        owned: list[dict[str, Any]],
        views: list[rollouts.ReplicaView],
        template_hash: str,
        created: _Created,
    ) -> None:
        now = self._clock()
        desired = deployment.spec.replicas
        counts = rollouts.count(views, template=template_hash)
        status = deployment.status.model_copy(deep=True)
        changed = status.set_condition(resolved.condition, now=now)
        status.observedGeneration = deployment.metadata.generation
        status.replicas = counts.replicas
        status.readyReplicas = counts.ready
        status.updatedReplicas = counts.updated
        status.modelVersion = resolved.version
        troubled = any(_troubled(r) for r in owned if not r["metadata"].get("deletionTimestamp"))
        if resolved.template is None:
            status.phase = "Pending" if counts.replicas == 0 else "Degraded"
        else:
            status.phase = rollouts.phase(
                counts, desired=desired, troubled=troubled, previous=deployment.status.phase
            )
        _, unavailable = rollouts.surge_and_unavailable(deployment.spec.rollout, desired)
        generation = status.observedGeneration
        for condition in _progress_conditions(counts, desired, unavailable, status.phase):
            condition.observedGeneration = generation
            status.set_condition(condition, now=now)
        newly_held = _set_quota_condition(status, created.held_by, now=now)
        await self._objects.write_status(obj, status.model_dump(mode="json", exclude_none=True))
        if changed:
            kind: EventType = "Normal" if resolved.condition.status == "True" else "Warning"
            await self._event(obj, kind, resolved.condition.reason, resolved.condition.message)
        if newly_held and created.held_by is not None:
            await self._event(obj, "Warning", QUOTA_CONDITION, created.held_by)

    async def _event(self, obj: dict[str, Any], type_: EventType, reason: str, text: str) -> None:
        await self._recorder.emit(obj, type_, reason, text, now=self._clock())

    async def _resolve(self, deployment: deployments.Deployment) -> _Resolved:
        spec = deployment.spec
        namespace = deployment.metadata.namespace or "default"

        def failed(reason: str, message: str) -> _Resolved:
            return _Resolved(_model_condition(deployment, False, reason, message), None, None)

        obj = await self._objects.get("Model", namespace, spec.model)
        if obj is None:
            message = f'model "{spec.model}" does not exist in namespace "{namespace}"'
            return failed("ModelNotFound", message)
        model = models.Model.model_validate(obj)
        version = model.spec.resolve_version(spec.modelVersion)
        if version is None:
            listed = ", ".join(f"{v.name} ({v.stage})" for v in model.spec.versions)
            wanted = spec.modelVersion or "a staging or production version"
            message = f'model "{spec.model}" has no deployable {wanted}; it has {listed}'
            return failed("ModelVersionNotFound", message)
        message = f'using model "{spec.model}" version "{version.name}" from {version.source}'
        condition = _model_condition(deployment, True, "ModelResolved", message)
        template = templates.replica_spec(deployment, model, version)
        return _Resolved(condition, template, version.name)


def _model_condition(
    deployment: deployments.Deployment, ok: bool, reason: str, message: str
) -> Condition:
    return Condition(
        type="ModelResolved",
        status="True" if ok else "False",
        reason=reason,
        message=message,
        observedGeneration=deployment.metadata.generation,
    )


async def _slow_start(
    wanted: Sequence[str | None], create: Callable[[str | None], Awaitable[None]]
) -> None:
    """`create` each of `wanted` in slow-start batches of 1, 2, 4, …, each batch at once: a
    batch with a failure raises before the next starts, so a failing store costs a few calls,
    not one per replica."""
    done, size = 0, 1
    while done < len(wanted):
        batch = wanted[done : done + size]
        results = await asyncio.gather(*(create(r) for r in batch), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        done, size = done + len(batch), size * 2


def _set_quota_condition(
    status: deployments.DeploymentStatus, held_by: str | None, *, now: datetime
) -> bool:
    """Condition QuotaExceeded while a Quota holds replicas back, gone once none does; True
    when it newly says something."""
    if held_by is None:
        status.conditions = [c for c in status.conditions if c.type != QUOTA_CONDITION]
        return False
    before = status.condition(QUOTA_CONDITION)
    condition = Condition(
        type=QUOTA_CONDITION, status="True", reason="QuotaExceeded", message=held_by
    )
    status.set_condition(condition, now=now)
    return before is None or before.message != held_by


def _progress_conditions(
    counts: rollouts.Counts, desired: int, unavailable: int, phase: str | None
) -> list[Condition]:
    ready = f"{counts.ready}/{desired} replicas ready, {counts.updated} on the current template"
    available = counts.ready >= desired - unavailable
    conditions = [
        Condition(
            type="Available",
            status="True" if available else "False",
            reason="MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            message=ready,
        )
    ]
    done = phase in ("Ready", "ScaledToZero")
    conditions.append(
        Condition(
            type="Progressing",
            status="True",
            reason="RolloutComplete" if done else "ReplicasUpdating",
            message=ready,
        )
    )
    return conditions


def _owners(replica: dict[str, Any]) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = replica["metadata"].get("ownerReferences") or []
    return refs


def _view(
    replica: dict[str, Any],
    live_clusters: set[str],
    cordoned: set[str],
    prices: dict[str, float],
) -> rollouts.ReplicaView:
    meta, spec, status = replica["metadata"], replica["spec"], replica.get("status") or {}
    annotations = meta.get("annotations") or {}
    load = status.get("load") or {}
    return rollouts.ReplicaView(
        name=meta["name"],
        template=(meta.get("labels") or {}).get(wellknown.TEMPLATE_HASH_LABEL, ""),
        ready=status.get("phase") == "Ready" and spec.get("cluster") in live_clusters,
        bound=spec.get("cluster") is not None,
        deleting=bool(meta.get("deletionTimestamp")),
        move=annotations.get(wellknown.MOVE_ANNOTATION),
        replaces=annotations.get(wellknown.REPLACES_ANNOTATION),
        created=meta.get("creationTimestamp") or "",
        cordoned=spec.get("cluster") in cordoned,
        price_per_hour=prices.get(spec.get("pool") or "", 0.0)
        * max(len(spec.get("nodes") or []), 1),
        load=float(load.get("running", 0)) + float(load.get("waiting", 0)),
        stuck=_troubled(replica),
    )


def _removal_reasons(
    deleted: Sequence[str], views: list[rollouts.ReplicaView], template: str
) -> dict[str, str]:
    """Why each replica was chosen, for its event: a scale-down names the victims rule."""
    by_name = {v.name: v for v in views}
    staying = [v for v in views if v.name not in deleted and not v.deleting]
    reasons = {}
    for name in deleted:
        view = by_name.get(name)
        if view is None:
            reasons[name] = ""
        elif view.move is not None:
            reasons[name] = f" ({MOVE_REASONS.get(view.move, 'moved')})"
        elif view.template != template:
            reasons[name] = " (replaced by the current template)"
        else:
            reasons[name] = f" (scale-down: {rollouts.removal_reason(view, staying)})"
    return reasons


def _signature(replica: dict[str, Any]) -> tuple[Any, ...]:
    """What the deployment controller reads of a replica; other changes do not wake it."""
    meta, status = replica["metadata"], replica.get("status") or {}
    annotations = meta.get("annotations") or {}
    scheduled = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Scheduled"),
        None,
    )
    return (
        status.get("phase"),
        scheduled,
        meta.get("deletionTimestamp"),
        tuple(meta.get("finalizers") or ()),
        (meta.get("labels") or {}).get(wellknown.TEMPLATE_HASH_LABEL),
        annotations.get(wellknown.MOVE_ANNOTATION),
        annotations.get(wellknown.REPLACES_ANNOTATION),
        replica["spec"].get("cluster"),
    )


def _troubled(replica: dict[str, Any]) -> bool:
    status = replica.get("status") or {}
    if status.get("phase") in TROUBLED_PHASES:
        return True
    return any(
        c.get("type") == "Scheduled" and c.get("status") == "False"
        for c in status.get("conditions") or []
    )
