"""Cluster liveness, health and eviction rules (policy.clusters): the phase derived from when
the controller last saw the heartbeat change, on its own clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferplane.api import fleet, wellknown
from inferplane.policy import clusters as liveness

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def cluster(phase: str = "Ready", *, heartbeat: datetime | None = T0) -> fleet.Cluster:
    status: dict[str, Any] = {"phase": phase}
    if heartbeat is not None:
        status["lastHeartbeatTime"] = heartbeat.isoformat()
    return fleet.Cluster.model_validate(
        {
            "metadata": {"name": "a"},
            "spec": {"heartbeatGraceSeconds": 10, "evictionGraceSeconds": 60},
            "status": status,
        }
    )


def test_a_fresh_heartbeat_keeps_the_cluster_ready_until_its_grace_runs_out() -> None:
    health = liveness.assess(cluster(), heard=T0, now=T0 + timedelta(seconds=4))
    assert health.status.phase == "Ready"
    assert health.status.condition("Ready").status == "True"  # type: ignore[union-attr]
    assert health.recheck_after == pytest.approx(6, abs=0.1)
    stale = liveness.assess(cluster(), heard=T0, now=T0 + timedelta(seconds=11))
    assert stale.status.phase == "NotReady"
    assert stale.event is not None and stale.event[:2] == ("Warning", "ClusterNotReady")


def test_cordon_shows_in_the_phase() -> None:
    cordoned = cluster().model_copy(update={"spec": fleet.ClusterSpec(cordoned=True)})
    assert liveness.assess(cordoned, heard=T0, now=T0).status.phase == "Cordoned"


def test_a_cluster_that_never_joined_stays_pending() -> None:
    health = liveness.assess(cluster("Pending", heartbeat=None), heard=None, now=T0)
    assert health.status.phase == "Pending" and health.event is None


def test_eviction_waits_for_the_grace_and_for_the_controller_to_have_watched() -> None:
    lost = liveness.assess(cluster(), heard=T0, now=T0 + timedelta(seconds=11)).status
    gone = cluster().model_copy(update={"status": lost})
    at = liveness.eviction_time(gone, watched_since=T0)
    assert at == T0 + timedelta(seconds=71)
    restarted = T0 + timedelta(hours=1)
    assert liveness.eviction_time(gone, watched_since=restarted) == restarted + timedelta(
        seconds=60
    )
    assert liveness.eviction_time(cluster(), watched_since=T0) is None


def test_a_new_heartbeat_brings_a_not_ready_cluster_back() -> None:
    lost = liveness.assess(cluster(), heard=T0, now=T0 + timedelta(seconds=11)).status
    gone = cluster().model_copy(update={"status": lost})
    quiet = liveness.assess(gone, heard=None, now=T0 + timedelta(seconds=12))
    assert quiet.status.phase == "NotReady" and quiet.event is None, "no second Warning"
    back = liveness.assess(gone, heard=T0 + timedelta(seconds=20), now=T0 + timedelta(seconds=20))
    assert back.status.phase == "Ready"
    assert back.event is not None and back.event[1] == "ClusterReady"


def test_only_a_not_ready_cluster_ignores_the_heartbeat_found_at_start() -> None:
    assert liveness.counts_on_first_sight(cluster("Ready"))
    assert liveness.counts_on_first_sight(cluster("Pending")), "a cluster that just joined"
    assert not liveness.counts_on_first_sight(cluster("NotReady"))


def test_live_means_an_agent_reports_and_the_cluster_is_not_going() -> None:
    def stored(phase: str, **meta: Any) -> dict[str, Any]:
        return {"metadata": {"name": "a", **meta}, "status": {"phase": phase}}

    assert liveness.is_live(stored("Ready")) and liveness.is_live(stored("Cordoned"))
    assert not liveness.is_live(stored("NotReady"))
    assert not liveness.is_live(stored("Pending"))
    assert not liveness.is_live(stored("Ready", deletionTimestamp="2025-01-01T00:00:00Z"))
    assert not liveness.is_live(None)


def test_an_eviction_outranks_a_planned_move() -> None:
    evict, planned = wellknown.MOVE_EVICT, wellknown.MOVE_PLANNED
    assert liveness.needs_move({}, planned) and liveness.needs_move({}, evict)
    assert liveness.needs_move({wellknown.MOVE_ANNOTATION: planned}, evict)
    assert not liveness.needs_move({wellknown.MOVE_ANNOTATION: evict}, planned)
    assert not liveness.needs_move({wellknown.MOVE_ANNOTATION: planned}, planned)
    preempt = {wellknown.MOVE_ANNOTATION: wellknown.MOVE_PREEMPT}
    assert not liveness.needs_move(preempt, planned) and liveness.needs_move(preempt, evict)


def test_drained_counts_what_is_left() -> None:
    assert liveness.drained(0).status == "True"
    left = liveness.drained(3)
    assert (left.status, left.reason) == ("False", "MovingReplicas") and "3" in left.message
