"""The change log: exactly-once resumption, across restarts, and compaction."""

from __future__ import annotations

import pytest

from inferplane.store import GoneError, Store, open_store
from tests.unit.store.helpers import obj, rv


def _write(store: Store, count: int, *, prefix: str) -> None:
    for i in range(count):
        store.create(obj("Replica", f"{prefix}-{i}"))


def _versions(
    store: Store, since: int, *, kind: str | None = None, namespace: str | None = None
) -> list[int]:
    return [e.resource_version for e in store.events_since(since, kind=kind, namespace=namespace)]


def test_events_carry_type_object_and_version(store: Store) -> None:
    created = store.create(obj("Deployment", "chat"))
    updated = store.update({**created, "spec": {"replicas": 2}})
    events = store.events_since(0)
    assert [(e.type, e.object, e.resource_version) for e in events] == [
        ("ADDED", created, 1),
        ("MODIFIED", updated, 2),
    ]


def test_events_since_filters_by_kind_and_namespace_and_pages(store: Store) -> None:
    store.create(obj("Deployment", "a"))
    store.create(obj("Replica", "b"))
    store.create(obj("Deployment", "c", namespace="team-b"))
    store.create(obj("Cluster", "eu", namespace=None))
    assert _versions(store, 0, kind="Deployment") == [1, 3]
    assert _versions(store, 0, namespace="team-a") == [1, 2]
    assert _versions(store, 0, namespace="") == [4]
    assert _versions(store, 1, kind="Deployment", namespace="team-b") == [3]
    assert [e.resource_version for e in store.events_since(1, limit=2)] == [2, 3]
    assert store.events_since(4) == []


def test_resuming_from_the_last_seen_version_is_exactly_once(store: Store) -> None:
    _write(store, 7, prefix="a")
    seen = _versions(store, 0)[:3]
    _write(store, 4, prefix="b")
    seen += _versions(store, seen[-1])
    assert seen == list(range(1, 12))


def test_resuming_after_a_restart_is_exactly_once(store_url: str) -> None:
    first = open_store(store_url)
    _write(first, 5, prefix="before")
    seen = _versions(first, 0)
    _write(first, 3, prefix="unseen")
    first.close()

    second = open_store(store_url)
    try:
        _write(second, 2, prefix="after")
        seen += _versions(second, seen[-1])
        assert seen == list(range(1, 11))
        assert second.current_resource_version() == 10
        assert len(second.list("Replica")[0]) == 10
    finally:
        second.close()


def test_compaction_keeps_the_newest_and_older_versions_are_gone(store: Store) -> None:
    _write(store, 10, prefix="r")
    assert store.compact(keep=3) == 7
    assert _versions(store, 7) == [8, 9, 10]
    with pytest.raises(GoneError) as raised:
        store.events_since(6)
    assert (raised.value.requested, raised.value.oldest) == (6, 7)
    assert store.compact(keep=5) == 7  # nothing more to drop
    assert store.compact(keep=0) == 10
    assert store.events_since(10) == []
    _write(store, 1, prefix="s")
    assert _versions(store, 10) == [11]


def test_compaction_survives_a_restart(store_url: str) -> None:
    first = open_store(store_url)
    _write(first, 4, prefix="r")
    first.compact(keep=1)
    first.close()
    second = open_store(store_url)
    try:
        with pytest.raises(GoneError):
            second.events_since(0)
        assert _versions(second, 3) == [4]
    finally:
        second.close()


def test_compact_refuses_a_negative_keep(store: Store) -> None:
    with pytest.raises(ValueError, match="keep"):
        store.compact(keep=-1)


def test_a_modified_event_carries_the_previous_state(store: Store) -> None:
    created = store.create(obj("Model", "m", spec={"n": 1}))
    store.update({**created, "spec": {"n": 2}})
    store.delete("Model", "team-a", "m")
    added, modified, deleted = store.events_since(rv(created) - 1)
    assert added.previous is None and deleted.previous is None
    assert modified.previous is not None
    assert modified.previous["spec"] == {"n": 1}
    assert modified.object["spec"] == {"n": 2}
