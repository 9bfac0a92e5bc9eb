"""The audit table: append in batches, filter, newest-first limits, expiry; on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from inferplane.store import Store
from inferplane.store.base import AuditRecord

T0 = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def record(i: int, **fields: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "time": T0 + timedelta(seconds=i),
        "request_id": f"req-{i}",
        "level": "Metadata",
        "user": "apikey:team-a/ci",
        "source": "10.0.0.1",
        "verb": "create",
        "kind": "deployments",
        "namespace": "team-a",
        "name": f"d{i}",
        "subresource": "",
        "path": f"/apis/inferplane.dev/v1/namespaces/team-a/deployments/d{i}",
        "code": 201,
        "resource_version": i + 1,
    }
    return AuditRecord(**(values | fields))


def test_records_come_back_as_written_oldest_first(store: Store) -> None:
    body = {"spec": {"replicas": 2**70, "note": "ünïcode"}}
    written = [record(0), record(1, level="Request", body=body, resource_version=None)]
    store.append_audit(written)
    assert store.list_audit() == written, "microseconds, big integers and text survive"


def test_filters_combine(store: Store) -> None:
    store.append_audit(
        [
            record(0),
            record(1, user="anonymous", code=401),
            record(2, kind="services"),
            record(3, namespace="team-b"),
        ]
    )
    assert [r.request_id for r in store.list_audit(user="anonymous")] == ["req-1"]
    assert [r.request_id for r in store.list_audit(kind="services")] == ["req-2"]
    assert [r.request_id for r in store.list_audit(namespace="team-b")] == ["req-3"]
    mine = store.list_audit(user="apikey:team-a/ci", kind="deployments", namespace="team-a")
    assert [r.request_id for r in mine] == ["req-0"]
    since = store.list_audit(since=T0 + timedelta(seconds=2))
    assert [r.request_id for r in since] == ["req-2", "req-3"], "since is inclusive"


def test_a_limit_keeps_the_newest(store: Store) -> None:
    store.append_audit([record(i) for i in range(5)])
    assert [r.request_id for r in store.list_audit(limit=2)] == ["req-3", "req-4"]


def test_expiry_deletes_only_older_records(store: Store) -> None:
    store.append_audit([record(i) for i in range(4)])
    assert store.expire_audit(before=T0 + timedelta(seconds=2)) == 2
    assert [r.request_id for r in store.list_audit()] == ["req-2", "req-3"]
    assert store.expire_audit(before=T0) == 0


def test_audit_records_are_not_objects_and_do_not_touch_the_watch_log(store: Store) -> None:
    store.append_audit([record(0)])
    assert store.current_resource_version() == 0
    assert store.events_since(0) == []
    store.append_audit([])
