"""The scheduler's snapshot from stored objects (policy.placement.snapshots), the one builder
the scheduling controller and `schedule --dry-run` share."""

from __future__ import annotations

from typing import Any

from inferplane.policy.placement import decisions, scheduler, snapshots
from tests.unit.policy import fleets


def stored_replica(name: str, deployment: str, cluster: str | None, **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "deployment": deployment,
        "model": {"name": "llama", "version": "v1", "source": "file:///m"},
    }
    if cluster is not None:
        spec |= {"cluster": cluster, "pool": f"{cluster}-gpu"}
    return {"metadata": {"name": name, "namespace": "team-a", **meta}, "spec": spec}


def fleet_objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    clusters = [fleets.cluster(n).to_dict() for n in ("a", "b")]
    pools = [fleets.pool(f"{n}-gpu", n).to_dict() for n in ("a", "b")]
    return clusters, pools


def test_only_bound_replicas_of_the_deployments_placed_count() -> None:
    clusters, pools = fleet_objects()
    bound = [
        stored_replica("chat-1", "chat", "a"),
        stored_replica("chat-2", "chat", None),  # not bound yet
        stored_replica("other-1", "other", "a"),  # another deployment
        stored_replica("going-1", "chat", "b", deletionTimestamp="2025-01-01T00:00:00Z"),
    ]
    snapshot = snapshots.snapshot_of(clusters, pools, [], bound, deployments={("team-a", "chat")})
    assert [c.metadata.name for c in snapshot.clusters] == ["a", "b"]
    assert [p.metadata.name for p in snapshot.pools] == ["a-gpu", "b-gpu"]
    assert sorted(r.metadata.name for r in snapshot.replicas) == ["chat-1", "going-1"], (
        "one being deleted still holds its devices"
    )


def test_spread_sees_the_replicas_a_deployment_already_has() -> None:
    """The disagreement the shared builder removes: a dry run that ignored bound replicas put
    the next replica of a spread deployment beside the one it has."""
    clusters, pools = fleet_objects()
    dep = fleets.deployment(strategy="spread")
    bound = [stored_replica("chat-1", "chat", "a")]
    snapshot = snapshots.snapshot_of(clusters, pools, [], bound, deployments={("team-a", "chat")})
    decision = scheduler.Scheduler(snapshot).decide(fleets.demand(dep, 2))
    assert isinstance(decision, decisions.Scheduled)
    assert decision.binding.cluster == "b"
    blind = snapshots.snapshot_of(clusters, pools, [], [], deployments={("team-a", "chat")})
    first = scheduler.Scheduler(blind).decide(fleets.demand(dep, 2))
    assert isinstance(first, decisions.Scheduled) and first.binding.cluster == "a"
