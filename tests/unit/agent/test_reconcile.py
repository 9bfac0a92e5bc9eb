"""The agent's decisions and reported statuses, as pure functions of what it knows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from inferplane.agent import reconcile
from inferplane.agent.runtime import base
from inferplane.api import replicas

CLUSTER = "eu-1"


def replica(
    name: str = "chat-0",
    *,
    phase: str = "Scheduled",
    cluster: str | None = CLUSTER,
    generation: int = 1,
    deleting: bool = False,
    finalizers: tuple[str, ...] = (reconcile.AGENT_STOP, "inferplane.dev/release-devices"),
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "team-a",
        "generation": generation,
        "finalizers": list(finalizers),
    }
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    spec = {"cluster": cluster, "pool": f"{cluster}-cpu" if cluster else None}
    return {"kind": "Replica", "metadata": meta, "spec": spec, "status": {"phase": phase}}


def engine(phase: base.Phase = "Ready", **fields: Any) -> base.EngineStatus:
    values: dict[str, Any] = {
        "name": "team-a/chat-0",
        "phase": phase,
        "url": "http://127.0.0.1:9000",
        "pid": 42,
        "restarts": 0,
        "started_at": datetime(2025, 1, 1, tzinfo=UTC),
        "last_probe_at": None,
        "message": "",
        "fingerprint": "f",
        **fields,
    }
    return base.EngineStatus(**values)


def decide(**view: Any) -> list[reconcile.Action]:
    defaults: dict[str, Any] = {"replicas": {}, "synced": True, "engines": {}}
    return reconcile.decide(reconcile.View(**{**defaults, **view}), cluster=CLUSTER)


KEY = "team-a/chat-0"


def test_a_bound_replica_without_an_engine_is_started() -> None:
    assert decide(replicas={KEY: replica()}) == [reconcile.Start(KEY)]


def test_a_replica_not_handed_over_is_left_alone() -> None:
    assert decide(replicas={KEY: replica(phase="Pending")}) == []
    assert decide(replicas={KEY: replica(cluster="us-1")}) == []


def test_a_running_engine_is_rechecked_only_when_its_replica_changes() -> None:
    replicas_ = {KEY: replica(generation=2)}
    engines = {KEY: engine()}
    assert decide(replicas=replicas_, engines=engines, launched={KEY: 2}) == []
    assert decide(replicas=replicas_, engines=engines, launched={KEY: 1}) == [
        reconcile.Recheck(KEY)
    ]


def test_a_failed_launch_is_retried_when_the_generation_changes() -> None:
    assert decide(replicas={KEY: replica(generation=1)}, failed={KEY: 1}) == []
    assert decide(replicas={KEY: replica(generation=2)}, failed={KEY: 1}) == [reconcile.Start(KEY)]


def test_a_deleted_replica_is_drained_then_its_finalizer_released() -> None:
    deleting = {KEY: replica(deleting=True)}
    assert decide(replicas=deleting, engines={KEY: engine()}) == [
        reconcile.Stop(KEY, "the replica is being deleted")
    ]
    assert decide(replicas=deleting, engines={KEY: engine("Draining")}) == []
    assert decide(replicas=deleting) == [reconcile.Release(KEY)]
    assert decide(replicas=deleting, releasing=frozenset({KEY})) == []
    assert decide(replicas={KEY: replica(deleting=True, finalizers=())}) == []


def test_engines_without_replicas_stop_only_once_the_list_is_known() -> None:
    engines = {KEY: engine()}
    assert decide(engines=engines, synced=False) == []  # the control plane was never reached
    assert decide(engines=engines) == [reconcile.Stop(KEY, "the replica no longer exists here")]
    moved = {KEY: replica(cluster="us-1")}
    assert decide(replicas=moved, engines=engines) == [
        reconcile.Stop(KEY, "the replica is not bound here")
    ]


def test_desired_status_reports_the_engine_and_its_load() -> None:
    obj = replica(generation=3)
    load = replicas.ReplicaLoad(
        running=2, observedTime=datetime(2025, 1, 1, tzinfo=UTC)
    ).model_dump(mode="json")
    status = reconcile.desired_status(obj, engine(restarts=1), load=load)
    assert status is not None
    assert status["phase"] == "Ready" and status["url"] == "http://127.0.0.1:9000"
    assert status["restarts"] == 1 and status["observedGeneration"] == 3
    assert status["load"]["running"] == 2
    starting = reconcile.desired_status(obj, engine("Starting"), load=load)
    assert starting is not None and "load" not in starting
    assert reconcile.desired_status(obj, None) is None
    failed = reconcile.desired_status(obj, None, failure="hf:// model sources are not fetched")
    assert failed == {
        "phase": "Failed",
        "message": "hf:// model sources are not fetched",
        "url": None,
        "observedGeneration": 3,
    }
