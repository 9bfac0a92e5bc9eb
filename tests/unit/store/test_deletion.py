"""Deletion: preconditions, finalizers and cascading along ownerReferences."""

from __future__ import annotations

import pytest

from inferplane.store import ConflictError, NotFoundError, Store
from tests.unit.store.helpers import names, obj, owned_by, rv


def _drop_finalizers(store: Store, kind: str, name: str, namespace: str = "team-a") -> dict:
    current = store.get(kind, namespace, name)
    current["metadata"]["finalizers"] = []
    return store.update(current)


def _log(store: Store, since: int) -> list[tuple[str, str, str]]:
    return [
        (e.type, e.object["kind"], e.object["metadata"]["name"]) for e in store.events_since(since)
    ]


def test_delete_removes_and_returns_the_final_state(store: Store) -> None:
    store.create(obj("Deployment", "chat", spec={"replicas": 1}))
    final = store.delete("Deployment", "team-a", "chat")
    assert final["spec"] == {"replicas": 1}
    assert rv(final) == 2
    with pytest.raises(NotFoundError):
        store.get("Deployment", "team-a", "chat")
    event = store.events_since(1)[0]
    assert (event.type, event.object, event.resource_version) == ("DELETED", final, 2)


def test_delete_with_stale_version_raises_conflict(store: Store) -> None:
    created = store.create(obj("Deployment", "chat"))
    store.update({**created, "spec": {"x": 1}})
    with pytest.raises(ConflictError):
        store.delete("Deployment", "team-a", "chat", resource_version=rv(created))
    store.delete("Deployment", "team-a", "chat", resource_version=2)
    assert names(store, "Deployment") == []


def test_finalizers_hold_the_object_until_the_last_one_is_removed(store: Store) -> None:
    store.create(obj("Replica", "r", metadata={"finalizers": ["agent", "cache"]}))
    marked = store.delete("Replica", "team-a", "r")
    assert marked["metadata"]["deletionTimestamp"].endswith("Z")
    assert store.get("Replica", "team-a", "r") == marked
    again = store.delete("Replica", "team-a", "r")
    assert again == marked  # already deleting: nothing written
    current = {**marked, "metadata": {**marked["metadata"], "finalizers": ["cache"]}}
    current = store.update(current)
    assert current["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    final = _drop_finalizers(store, "Replica", "r")
    assert final["metadata"]["finalizers"] == []
    assert names(store, "Replica") == []
    assert _log(store, 1) == [
        ("MODIFIED", "Replica", "r"),
        ("MODIFIED", "Replica", "r"),
        ("DELETED", "Replica", "r"),
    ]


def test_update_cannot_clear_deletion_timestamp(store: Store) -> None:
    store.create(obj("Replica", "r", metadata={"finalizers": ["agent"]}))
    marked = store.delete("Replica", "team-a", "r")
    meta = {k: v for k, v in marked["metadata"].items() if k != "deletionTimestamp"}
    updated = store.update({**marked, "metadata": meta, "status": {"phase": "Stopping"}})
    assert updated["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]


def test_cascade_follows_owner_references_through_levels(store: Store) -> None:
    deployment = store.create(obj("Deployment", "chat"))
    replicas = [
        store.create(obj("Replica", f"r{i}", metadata=owned_by(deployment))) for i in (1, 2)
    ]
    for replica in replicas:
        store.create(
            obj("Endpoint", f"e-{replica['metadata']['name']}", metadata=owned_by(replica))
        )
    store.create(obj("Replica", "unrelated"))
    before = store.current_resource_version()

    store.delete("Deployment", "team-a", "chat")

    assert names(store, "Replica") == ["unrelated"]
    assert names(store, "Endpoint") == []
    log = _log(store, before)
    assert log[0] == ("DELETED", "Deployment", "chat")
    assert sorted(log[1:]) == [
        ("DELETED", "Endpoint", "e-r1"),
        ("DELETED", "Endpoint", "e-r2"),
        ("DELETED", "Replica", "r1"),
        ("DELETED", "Replica", "r2"),
    ]


def test_cascade_honours_a_dependent_finalizer(store: Store) -> None:
    deployment = store.create(obj("Deployment", "chat"))
    replica_meta = {**owned_by(deployment), "finalizers": ["agent"]}
    replica = store.create(obj("Replica", "r1", metadata=replica_meta))
    store.create(obj("Endpoint", "e1", metadata=owned_by(replica)))

    store.delete("Deployment", "team-a", "chat")

    assert names(store, "Deployment") == []
    assert store.get("Replica", "team-a", "r1")["metadata"]["deletionTimestamp"]
    assert names(store, "Endpoint") == ["e1"]  # its owner is not gone yet
    _drop_finalizers(store, "Replica", "r1")
    assert names(store, "Replica") == []
    assert names(store, "Endpoint") == []


def test_cascade_crosses_to_fleet_scoped_but_not_other_namespaces(store: Store) -> None:
    owner = store.create(obj("Deployment", "chat"))
    store.create(obj("ModelCache", "weights", namespace=None, metadata=owned_by(owner)))
    store.create(obj("Replica", "foreign", namespace="team-b", metadata=owned_by(owner)))
    store.delete("Deployment", "team-a", "chat")
    assert names(store, "ModelCache") == []
    assert names(store, "Replica", "team-b") == ["foreign"]


def test_cascade_is_one_transaction_with_consecutive_versions(store: Store) -> None:
    owner = store.create(obj("Deployment", "chat"))
    for i in range(5):
        store.create(obj("Replica", f"r{i}", metadata=owned_by(owner)))
    deleted = store.delete("Deployment", "team-a", "chat")
    versions = [e.resource_version for e in store.events_since(rv(deleted) - 1)]
    assert versions == list(range(rv(deleted), rv(deleted) + 6))
    assert store.current_resource_version() == versions[-1]


def test_owner_cycles_terminate(store: Store) -> None:
    a = store.create(obj("Replica", "a"))
    b = store.create(obj("Replica", "b", metadata=owned_by(a)))
    store.update({**a, "metadata": {**a["metadata"], **owned_by(b)}})
    store.delete("Replica", "team-a", "a")
    assert names(store, "Replica") == []


def test_dry_run_delete_cascades_nothing(store: Store) -> None:
    owner = store.create(obj("Deployment", "chat"))
    store.create(obj("Replica", "r1", metadata=owned_by(owner)))
    store.delete("Deployment", "team-a", "chat", dry_run=True)
    assert names(store, "Replica") == ["r1"]
    assert store.current_resource_version() == 2
