"""What the agent should do, and what it should report, given what it knows: pure functions.

`decide` compares the Replicas bound to the cluster with the engines the runtime runs and
returns actions; `desired_status` says what a replica's status should read. The agent's loop
carries the actions out and hands the statuses to its reporter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inferplane.agent.runtime import base
from inferplane.api import wellknown

Object = dict[str, Any]
AGENT_STOP = wellknown.AGENT_STOP_FINALIZER
"""The finalizer that holds a deleted Replica until its agent has stopped the engine."""


@dataclass(frozen=True)
class Start:
    """Run the replica's engine."""

    name: str


@dataclass(frozen=True)
class Stop:
    """Drain and stop the engine."""

    name: str
    reason: str


@dataclass(frozen=True)
class Recheck:
    """The replica's spec changed: rebuild its launch, and replace the engine if it differs."""

    name: str


@dataclass(frozen=True)
class Release:
    """The engine of a deleted replica is gone: remove the agent's finalizer."""

    name: str


Action = Start | Stop | Recheck | Release


@dataclass(frozen=True)
class View:
    """Everything `decide` looks at."""

    replicas: Mapping[str, Object]
    """The Replicas whose spec.cluster is this cluster, by namespace/name."""
    synced: bool
    """A full list has been seen, so an engine without a replica really has none."""
    engines: Mapping[str, base.EngineStatus]
    """What the runtime runs, by the same names."""
    launched: Mapping[str, int | None] = field(default_factory=dict)
    """The replica generation each running engine was built from."""
    failed: Mapping[str, int | None] = field(default_factory=dict)
    """Replicas whose launch failed, and at which generation (retried when it changes)."""
    releasing: frozenset[str] = frozenset()
    """Replicas whose finalizer removal is already under way."""


def bound_here(obj: Object, cluster: str) -> bool:
    """The scheduler bound the replica to this cluster and handed it over (phase past
    Pending)."""
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase") or "Pending"
    return spec.get("cluster") == cluster and bool(spec.get("pool")) and phase != "Pending"


def decide(view: View, *, cluster: str) -> list[Action]:
    actions: list[Action] = []
    for name, obj in view.replicas.items():
        actions += _for_replica(view, name, obj, cluster)
    if view.synced:
        for name, engine in view.engines.items():
            if name not in view.replicas and engine.phase != "Draining":
                actions.append(Stop(name, "the replica no longer exists here"))
    return actions


def _for_replica(view: View, name: str, obj: Object, cluster: str) -> list[Action]:
    meta = obj["metadata"]
    engine = view.engines.get(name)
    draining = engine is not None and engine.phase == "Draining"
    if meta.get("deletionTimestamp"):
        if engine is None:
            holds = AGENT_STOP in (meta.get("finalizers") or [])
            return [Release(name)] if holds and name not in view.releasing else []
        return [] if draining else [Stop(name, "the replica is being deleted")]
    if not bound_here(obj, cluster):
        return [] if engine is None or draining else [Stop(name, "the replica is not bound here")]
    generation = meta.get("generation")
    if engine is None:
        return [] if name in view.failed and view.failed[name] == generation else [Start(name)]
    if not draining and view.launched.get(name, -1) != generation:
        return [Recheck(name)]
    return []


def desired_status(
    obj: Object,
    engine: base.EngineStatus | None,
    *,
    failure: str | None = None,
    load: Object | None = None,
) -> Object | None:
    """The status the agent reports for a replica; None while it has nothing to say. `load`
    is the ReplicaLoad as JSON (loadsummary.persisted chooses it)."""
    generation = obj["metadata"].get("generation")
    if engine is None:
        if failure is None:
            return None
        return {
            "phase": "Failed",
            "message": failure,
            "url": None,
            "observedGeneration": generation,
        }
    status: Object = {
        "phase": engine.phase,
        "url": engine.url,
        "restarts": engine.restarts,
        "message": engine.message,
        "startTime": engine.started_at.isoformat() if engine.started_at else None,
        "observedGeneration": generation,
    }
    if load is not None and engine.phase == "Ready":
        status["load"] = load
    return status
