"""The autoscaler: sizes each autoscaled Deployment from the load its replicas and gateways
report, through the pure policy in policy/autoscaling.

Every TICK_SECONDS it reads the deployment's replicas from the store and their recent load
from the LoadBoard (memory, fed by the metrics channel), asks `autoscaling.decide`, and when
the answer differs from spec.replicas writes it there, records a `Scaled` Event and the
decision in status.autoscaling. Between decisions it writes status.autoscaling at most every
SUMMARY_SECONDS, so a fleet of steady deployments costs the store next to nothing. It runs on
the leader only, as every controller does; the policy's carried state is kept in memory and in
status.autoscaling.resume, from which a new leader goes on.

A held request at a gateway wakes it at once: the gateway's demand annotation is a change to
the Deployment, which this controller watches, and the policy scales from zero on it without
waiting for a window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inferplane import logs
from inferplane.api import autoscaling as autoscaling_api
from inferplane.api import deployments, wellknown
from inferplane.control.loadboard import RETENTION_SECONDS, LoadBoard
from inferplane.control.runtime.controller import Key, Result, Watch
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.objects import Clock, Objects, utcnow
from inferplane.policy import autoscaling

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0
SUMMARY_SECONDS = 30.0
PRUNE_SECONDS = 60.0
LOOKBACK_SECONDS = 30.0
"""Samples older than the stable window passed to the policy: each replica's sample before the
window dates the first one in it (an agent reports every few seconds). Passing the whole
retention instead costs the decision ~8× at 256 samples per replica."""
SEEN_SLACK_SECONDS = 0.5
"""How late after its creation second a replica may first be seen and still date it."""
STARTING_PHASES = frozenset({"Pending", "Scheduled", "Starting"})
"""Phases of a replica on its way to Ready: capacity in flight, not to be asked for again."""


@dataclass
class _Memory:
    """What the controller keeps per deployment between ticks."""

    state: autoscaling.State = field(default_factory=autoscaling.State)
    written: float = float("-inf")
    """When status.autoscaling was last written (board clock)."""
    mode: str = ""
    ready_seen: set[str] = field(default_factory=set)
    first_seen: dict[str, float] = field(default_factory=dict)
    """Live replica → when this controller first saw it (board clock). A Replica's creation
    wakes this controller, so this is its creation to within a reconcile, finer than the
    whole-second creationTimestamp."""
    cold_start: float | None = None
    watching_since: float | None = None
    """When this controller first looked at the deployment (board clock)."""
    bound: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Every replica seen bound in the retention: its cluster and when last seen. The load a
    replica served counts after it has gone, since that load moved to the others."""


@dataclass(frozen=True)
class _Fleet:
    """The deployment's live replicas, as the policy counts them."""

    ready: dict[str, str]
    """Ready replica → the cluster it is bound to."""
    bound: dict[str, str]
    """Every live bound replica (Ready or not) → its cluster."""
    starting: int
    created: dict[str, str]
    """Every live replica → its creationTimestamp, for the cold-start measurement."""


class AutoscalingController:
    name = "autoscaler"
    kind = "Deployment"
    workers = 2

    def __init__(
        self, objects: Objects, recorder: EventRecorder, board: LoadBoard, *, clock: Clock = utcnow
    ) -> None:
        self._objects = objects
        self._recorder = recorder
        self._board = board
        self._clock = clock
        self._memory: dict[Key, _Memory] = {}
        self._pruned = float("-inf")
        self.watches = [Watch("Replica", self._deployment_of)]

    async def _deployment_of(self, replica: dict[str, Any]) -> list[Key]:
        name = (replica.get("spec") or {}).get("deployment")
        return [Key(replica["metadata"].get("namespace") or "", name)] if name else []

    async def reconcile(self, key: Key) -> Result:
        obj = await self._objects.get("Deployment", key.namespace, key.name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self._memory.pop(key, None)
            return Result()
        deployment = deployments.Deployment.model_validate(obj)
        spec = deployment.spec.autoscaling
        if spec is None or not spec.enabled:
            self._memory.pop(key, None)
            if deployment.status.autoscaling is not None:
                status = deployment.status.model_copy(update={"autoscaling": None})
                await self._objects.write_status(obj, _dump(status))
            return Result()
        memory = self._memory.get(key)
        if memory is None:
            memory = self._memory[key] = _restored(deployment.status.autoscaling)
        fleet = await self._fleet(obj)
        now = self._board.now()
        if now - self._pruned >= PRUNE_SECONDS:
            self._pruned = now
            self._board.prune()
        measure_cold_start(memory, fleet, now)
        inputs = self._inputs(key, obj, deployment, spec, fleet, memory, now)
        decision = autoscaling.decide(spec, inputs, memory.state)
        memory.state = decision.state
        current = deployment.spec.replicas
        if decision.desired != current:
            obj = await self._scale(obj, current, decision)
            await self._summarise(obj, memory, decision, now, scaled=(current, decision.desired))
        elif now - memory.written >= SUMMARY_SECONDS or decision.mode != memory.mode:
            await self._summarise(obj, memory, decision, now)
        return Result(requeue_after=TICK_SECONDS)

    async def _fleet(self, deployment: dict[str, Any]) -> _Fleet:
        meta = deployment["metadata"]
        ready: dict[str, str] = {}
        bound: dict[str, str] = {}
        created: dict[str, str] = {}
        starting = 0
        for replica in await self._objects.list("Replica", meta.get("namespace") or ""):
            rmeta, rspec = replica["metadata"], replica.get("spec") or {}
            owned = any(o.get("uid") == meta["uid"] for o in rmeta.get("ownerReferences") or [])
            if not owned or rmeta.get("deletionTimestamp"):
                continue
            phase = (replica.get("status") or {}).get("phase", "Pending")
            created[rmeta["name"]] = rmeta.get("creationTimestamp", "")
            if rspec.get("cluster"):
                bound[rmeta["name"]] = rspec["cluster"]
            if phase == "Ready" and rspec.get("cluster"):
                ready[rmeta["name"]] = rspec["cluster"]
            elif phase in STARTING_PHASES:
                starting += 1
        return _Fleet(ready, bound, starting, created)

    def _inputs(
        self,
        key: Key,
        obj: dict[str, Any],
        deployment: deployments.Deployment,
        spec: autoscaling_api.AutoscalingSpec,
        fleet: _Fleet,
        memory: _Memory,
        now: float,
    ) -> autoscaling.Inputs:
        ns_name = (key.namespace, key.name)
        horizon = now - RETENTION_SECONDS
        for name, cluster in fleet.bound.items():
            memory.bound[name] = (cluster, now)
        for name in [n for n, (_, seen) in memory.bound.items() if seen < horizon]:
            del memory.bound[name]
        clusters = {name: cluster for name, (cluster, _) in memory.bound.items()}
        samples = self._board.replica_samples(key.namespace, clusters, samples_since(spec, now))
        gateway = self._board.gateway_samples(ns_name, now - spec.stableWindowSeconds)
        held = _annotated_demand(obj, now, spec.stableWindowSeconds)
        if held is not None and not fleet.ready:
            gateway = [*gateway, held]
            self._board.saw_request(ns_name, held.time)
        busy = [s.time for s in samples if s.running + s.waiting > 0 or s.rps > 0]
        if busy:
            self._board.saw_request(ns_name, max(busy))
        return autoscaling.Inputs(
            now=now,
            current=deployment.spec.replicas,
            ready=frozenset(fleet.ready),
            starting=fleet.starting,
            samples=samples,
            gateway=gateway,
            last_request_time=self._board.last_request(ns_name),
            cold_start_seconds=memory.cold_start,
        )

    async def _scale(
        self, obj: dict[str, Any], current: int, decision: autoscaling.Decision
    ) -> dict[str, Any]:
        changed = {**obj, "spec": {**obj["spec"], "replicas": decision.desired}}
        stored = await self._objects.update(changed)
        message = f"scaled {current} → {decision.desired}: {decision.reason}"
        logs.event(
            log,
            "autoscaled",
            deployment=f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}",
            replicas_before=current,
            replicas=decision.desired,
            mode=decision.mode,
            reason=decision.reason,
        )
        await self._recorder.emit(stored, "Normal", "Scaled", message, now=self._clock())
        return stored

    async def _summarise(
        self,
        obj: dict[str, Any],
        memory: _Memory,
        decision: autoscaling.Decision,
        now: float,
        *,
        scaled: tuple[int, int] | None = None,
    ) -> None:
        deployment = deployments.Deployment.model_validate(obj)
        previous = deployment.status.autoscaling or deployments.AutoscalingStatus()
        at = self._clock()
        summary = deployments.AutoscalingStatus(
            mode=decision.mode,
            metric=decision.metric,
            value=round(decision.value, 4),
            target=decision.target,
            desiredReplicas=decision.desired,
            reason=decision.reason,
            lastScaleTime=at if scaled else previous.lastScaleTime,
            lastScaleReason=(
                f"scaled {scaled[0]} → {scaled[1]}: {decision.reason}"
                if scaled
                else previous.lastScaleReason
            ),
            coldStartSeconds=(
                round(memory.cold_start, 3)
                if memory.cold_start is not None
                else previous.coldStartSeconds
            ),
            observedTime=at,
            resume=_resumable(decision.state),
        )
        status = deployment.status.model_copy(update={"autoscaling": summary})
        await self._objects.write_status(obj, _dump(status))
        memory.written = now
        memory.mode = decision.mode


def samples_since(spec: autoscaling_api.AutoscalingSpec, now: float) -> float:
    """The oldest sample time the policy is handed: the stable window and one lookback."""
    return now - spec.stableWindowSeconds - LOOKBACK_SECONDS


def measure_cold_start(memory: _Memory, fleet: _Fleet, now: float) -> None:
    """Creation → first seen Ready, for replicas created while this leader watched the
    deployment: one created earlier (by another leader, or before a restart of `up`
    whose engines start again) would measure the outage, not a cold start.

    Creation is when this controller first saw the replica where that was within the
    second its creationTimestamp names (plus a reconcile's slack), else the timestamp."""
    if memory.watching_since is None:
        memory.watching_since = now
    for name in fleet.created:
        if name not in fleet.ready:  # first seen Ready says nothing of when it was made
            memory.first_seen.setdefault(name, now)
    for name in fleet.ready:
        if name in memory.ready_seen:
            continue
        memory.ready_seen.add(name)
        born = _epoch(fleet.created[name])
        if born is None or not memory.watching_since - TICK_SECONDS <= born <= now:
            continue
        start, seen = born, memory.first_seen.get(name)
        if seen is not None and born <= seen < born + 1.0 + SEEN_SLACK_SECONDS:
            start = seen
        memory.cold_start = now - start
    memory.ready_seen &= set(fleet.ready)
    for name in [n for n in memory.first_seen if n not in fleet.created]:
        del memory.first_seen[name]


def _restored(status: deployments.AutoscalingStatus | None) -> _Memory:
    if status is None:
        return _Memory()
    return _Memory(
        state=autoscaling.State.from_json(status.resume), cold_start=status.coldStartSeconds
    )


def _resumable(state: autoscaling.State) -> dict[str, Any]:
    """The state without the forecaster's history, which is rebuilt from fresh samples and
    would make every summary a large write."""
    data = state.to_json()
    data.pop("history", None)
    return data


def _annotated_demand(
    obj: dict[str, Any], now: float, window: float
) -> autoscaling.GatewaySample | None:
    """The gateway's demand annotation as a sample of held requests, while it is fresh."""
    annotations = obj["metadata"].get("annotations") or {}
    at = _epoch(annotations.get(wellknown.DEMAND_AT_ANNOTATION, ""))
    waiting = annotations.get(wellknown.DEMAND_WAITING_ANNOTATION, "")
    if at is None or not waiting.isdigit() or not 0 <= now - at <= window:
        return None
    return autoscaling.GatewaySample(
        time=at, gateway="demand-annotation", held=max(int(waiting), 1)
    )


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def _dump(status: deployments.DeploymentStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", exclude_none=True)
