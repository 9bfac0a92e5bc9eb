"""Create, read, list, update, dry runs and resourceVersions, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.store import AlreadyExistsError, ConflictError, NotFoundError, Store
from tests.unit.store.helpers import names, obj, rv


def test_create_sets_server_fields_and_get_returns_them(store: Store) -> None:
    created = store.create(obj("Deployment", "chat", spec={"replicas": 1}))
    meta = created["metadata"]
    assert meta["generation"] == 1
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["resourceVersion"] == "1"
    assert store.get("Deployment", "team-a", "chat") == created


def test_create_ignores_caller_server_fields(store: Store) -> None:
    metadata = {"resourceVersion": "99", "deletionTimestamp": "2020-01-01T00:00:00Z"}
    created = store.create(obj("Deployment", "chat", metadata=metadata))
    assert rv(created) == 1
    assert "deletionTimestamp" not in created["metadata"]


def test_create_existing_name_raises_already_exists(store: Store) -> None:
    store.create(obj("Deployment", "chat"))
    with pytest.raises(AlreadyExistsError) as raised:
        store.create(obj("Deployment", "chat"))
    error = raised.value
    assert (error.kind, error.namespace, error.name) == ("Deployment", "team-a", "chat")
    assert '"chat"' in str(error)


def test_same_name_in_other_kind_or_namespace_is_distinct(store: Store) -> None:
    store.create(obj("Deployment", "chat"))
    store.create(obj("Service", "chat"))
    store.create(obj("Deployment", "chat", namespace="team-b"))
    assert store.get("Deployment", "team-b", "chat")["metadata"]["namespace"] == "team-b"


def test_get_missing_raises_not_found_naming_the_object(store: Store) -> None:
    with pytest.raises(NotFoundError) as raised:
        store.get("Deployment", "team-a", "nope")
    assert (raised.value.kind, raised.value.namespace, raised.value.name) == (
        "Deployment",
        "team-a",
        "nope",
    )


def test_list_sorts_by_namespace_then_name_and_filters(store: Store) -> None:
    for namespace, name in [("b", "x"), ("a", "z"), ("a", "y"), ("b", "a")]:
        store.create(obj("Model", name, namespace=namespace))
    store.create(obj("Deployment", "other", namespace="a"))
    items, version = store.list("Model")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == [
        ("a", "y"),
        ("a", "z"),
        ("b", "a"),
        ("b", "x"),
    ]
    assert version == 5 == store.current_resource_version()
    assert names(store, "Model", "b") == ["a", "x"]
    assert store.list("Model", "empty") == ([], 5)


def test_fleet_scoped_objects_live_in_the_empty_namespace(store: Store) -> None:
    created = store.create(obj("Cluster", "eu-1", namespace=None))
    assert "namespace" not in created["metadata"]
    assert store.get("Cluster", "", "eu-1") == created
    assert names(store, "Cluster", "") == ["eu-1"]
    assert names(store, "Cluster") == ["eu-1"]


def test_update_replaces_and_keeps_server_fields(store: Store) -> None:
    created = store.create(obj("Deployment", "chat", spec={"replicas": 1}))
    change = obj("Deployment", "chat", spec={"replicas": 1}, status={"phase": "Ready"})
    change["metadata"].update(uid="forged", creationTimestamp="1999-01-01T00:00:00Z")
    updated = store.update(change)
    for field in ("uid", "creationTimestamp", "generation"):
        assert updated["metadata"][field] == created["metadata"][field]
    assert updated["status"] == {"phase": "Ready"}
    assert rv(updated) == 2
    assert store.get("Deployment", "team-a", "chat") == updated


def test_update_missing_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.update(obj("Deployment", "ghost"))


def test_update_with_stale_version_raises_conflict(store: Store) -> None:
    first = store.create(obj("Deployment", "chat", spec={"replicas": 1}))
    store.update({**first, "spec": {"replicas": 2}})
    with pytest.raises(ConflictError) as raised:
        store.update({**first, "spec": {"replicas": 3}})
    assert (raised.value.expected, raised.value.current) == (1, 2)
    assert store.get("Deployment", "team-a", "chat")["spec"] == {"replicas": 2}


def test_update_without_version_is_unconditional(store: Store) -> None:
    store.create(obj("Deployment", "chat", spec={"replicas": 1}))
    store.update(obj("Deployment", "chat", spec={"replicas": 2}))
    assert store.update(obj("Deployment", "chat", spec={"replicas": 3}))["spec"]["replicas"] == 3


def test_generation_bumps_only_when_spec_changes(store: Store) -> None:
    current = store.create(obj("Deployment", "chat", spec={"replicas": 1, "model": "m"}))
    steps: list[tuple[dict[str, Any], int]] = [
        ({"status": {"phase": "Ready"}}, 1),
        ({"labels": {"a": "b"}}, 1),
        ({"spec": {"model": "m", "replicas": 1}}, 1),  # same spec, other key order
        ({"spec": {"model": "m", "replicas": 2}}, 2),
        ({"spec": {"model": "m", "replicas": True}}, 3),  # 1 == True in Python, not in JSON
    ]
    for change, generation in steps:
        labels = change.pop("labels", None)
        meta = {**current["metadata"], "labels": labels} if labels else current["metadata"]
        current = store.update({**current, **change, "metadata": meta})
        assert current["metadata"]["generation"] == generation


def test_update_that_changes_nothing_writes_nothing(store: Store) -> None:
    created = store.create(obj("Deployment", "chat", spec={"replicas": 1}))
    assert store.update(created) == created
    assert store.current_resource_version() == 1
    assert len(store.events_since(0)) == 1


def test_resource_version_is_global_across_kinds(store: Store) -> None:
    versions = [
        rv(store.create(obj("Deployment", "a"))),
        rv(store.create(obj("Cluster", "eu", namespace=None))),
        rv(store.update(obj("Deployment", "a", spec={"x": 1}))),
        rv(store.create(obj("Model", "m", namespace="team-b"))),
        rv(store.delete("Cluster", "", "eu")),
    ]
    assert versions == [1, 2, 3, 4, 5]
    assert store.current_resource_version() == 5


def test_dry_run_returns_the_result_and_writes_nothing(store: Store) -> None:
    real = store.create(obj("Deployment", "chat", spec={"replicas": 1}))
    would_create = store.create(obj("Deployment", "new"), dry_run=True)
    would_update = store.update({**real, "spec": {"replicas": 5}}, dry_run=True)
    would_delete = store.delete("Deployment", "team-a", "chat", dry_run=True)
    assert would_create["metadata"]["generation"] == 1
    assert would_update["metadata"]["generation"] == 2
    assert would_delete["metadata"]["name"] == "chat"
    assert names(store, "Deployment") == ["chat"]
    assert store.get("Deployment", "team-a", "chat") == real
    assert store.current_resource_version() == 1
    assert [e.resource_version for e in store.events_since(0)] == [1]


def test_dry_run_runs_the_same_checks(store: Store) -> None:
    created = store.create(obj("Deployment", "chat"))
    store.update({**created, "spec": {"x": 1}})
    with pytest.raises(AlreadyExistsError):
        store.create(obj("Deployment", "chat"), dry_run=True)
    with pytest.raises(ConflictError):
        store.update({**created, "spec": {"x": 2}}, dry_run=True)
    with pytest.raises(NotFoundError):
        store.delete("Deployment", "team-a", "ghost", dry_run=True)


def test_objects_without_kind_or_name_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="kind"):
        store.create({"metadata": {"name": "x"}})
    with pytest.raises(ValueError, match=r"metadata\.name"):
        store.create({"kind": "Deployment", "metadata": {}})
    assert store.current_resource_version() == 0
