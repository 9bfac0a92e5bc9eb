"""The `Store` on SQLAlchemy Core, shared by SQLite and PostgreSQL.

Writes run in one transaction that first locks the `store_state` row, so writers are
serialised and commit in resourceVersion order: a watcher that has read every change up to
N never later finds a change below N. Reads run in a snapshot transaction (the engine
`reader` is configured for it), so a list and its resourceVersion agree.
"""

from __future__ import annotations

import builtins
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from inferplane.store import base, objects, schema
from inferplane.store.objects import Object, ObjectKey


def _where_key(table: sa.Table, key: ObjectKey) -> sa.ColumnElement[bool]:
    return sa.and_(
        table.c.kind == key.kind, table.c.namespace == key.namespace, table.c.name == key.name
    )


class SqlStore(base.Store):
    """A store on any SQLAlchemy engine pair whose dialect setup `engines.py` provides."""

    def __init__(
        self,
        *,
        reader: sa.Engine,
        writer: sa.Engine,
        clock: Callable[[], datetime],
        serialize_writes: bool = False,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._clock = clock
        # SQLite's busy handler sleeps in steps of up to 100 ms while threads fight for the
        # write lock; queueing writers in-process first keeps the tail short. PostgreSQL
        # queues them on the state row instead.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if serialize_writes else nullcontext()
        )

    def create(self, obj: Object, *, dry_run: bool = False) -> Object:
        with self._writing(dry_run=dry_run) as tx:
            return tx.create(obj)

    def update(self, obj: Object, *, dry_run: bool = False) -> Object:
        with self._writing(dry_run=dry_run) as tx:
            return tx.update(obj)

    def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        resource_version: int | None = None,
        dry_run: bool = False,
    ) -> Object:
        with self._writing(dry_run=dry_run) as tx:
            return tx.delete(ObjectKey(kind, namespace, name), expected=resource_version)

    def get(self, kind: str, namespace: str, name: str) -> Object:
        key = ObjectKey(kind, namespace, name)
        with self._reading() as conn:
            found = _load(conn, key)
        if found is None:
            raise base.NotFoundError(*key)
        return found

    def list(self, kind: str, namespace: str | None = None) -> tuple[list[Object], int]:
        query = sa.select(schema.objects.c.data).where(schema.objects.c.kind == kind)
        if namespace is not None:
            query = query.where(schema.objects.c.namespace == namespace)
        query = query.order_by(schema.objects.c.namespace, schema.objects.c.name)
        with self._reading() as conn:
            version = _state(conn).resource_version
            rows = conn.execute(query).scalars().all()
        return [objects.loads(data) for data in rows], version

    def events_since(
        self,
        resource_version: int,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int = 1000,
    ) -> builtins.list[base.WatchEvent]:
        log = schema.events
        query = sa.select(log.c.type, log.c.data, log.c.previous, log.c.resource_version)
        query = query.where(log.c.resource_version > resource_version)
        if kind is not None:
            query = query.where(log.c.kind == kind)
        if namespace is not None:
            query = query.where(log.c.namespace == namespace)
        query = query.order_by(log.c.resource_version).limit(limit)
        with self._reading() as conn:
            horizon = _state(conn).horizon
            if resource_version < horizon:
                raise base.GoneError(resource_version, oldest=horizon)
            rows = conn.execute(query).all()
        return [
            base.WatchEvent(
                row.type,
                objects.loads(row.data),
                row.resource_version,
                objects.loads(row.previous) if row.previous else None,
            )
            for row in rows
        ]

    def current_resource_version(self) -> int:
        with self._reading() as conn:
            return int(_state(conn).resource_version)

    def compact(self, *, keep: int) -> int:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, not {keep}")
        log = schema.events
        newest_dropped = (
            sa.select(log.c.resource_version)
            .order_by(log.c.resource_version.desc())
            .offset(keep)
            .limit(1)
        )
        with self._write_lock, self._writer.connect() as conn, conn.begin():
            horizon = int(_state(conn, lock=True).horizon)
            cutoff = conn.execute(newest_dropped).scalar_one_or_none()
            if cutoff is None or cutoff <= horizon:
                return horizon
            conn.execute(log.delete().where(log.c.resource_version <= cutoff))
            conn.execute(schema.state.update().values(horizon=cutoff))
            return int(cutoff)

    def append_audit(self, records: Sequence[base.AuditRecord]) -> None:
        if not records:
            return
        rows = [_audit_row(record) for record in records]
        with self._write_lock, self._writer.connect() as conn, conn.begin():
            conn.execute(schema.audit_log.insert(), rows)

    def list_audit(
        self,
        *,
        since: datetime | None = None,
        user: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int = 500,
    ) -> builtins.list[base.AuditRecord]:
        log = schema.audit_log
        query = sa.select(log)
        for column, wanted in ((log.c.principal, user), (log.c.kind, kind)):
            if wanted is not None:
                query = query.where(column == wanted)
        if namespace is not None:
            query = query.where(log.c.namespace == namespace)
        if since is not None:
            query = query.where(log.c.time_us >= _micros(since))
        query = query.order_by(log.c.time_us.desc(), log.c.id.desc()).limit(limit)
        with self._reading() as conn:
            rows = conn.execute(query).all()
        return [_audit_record(row) for row in reversed(rows)]

    def expire_audit(self, *, before: datetime) -> int:
        log = schema.audit_log
        with self._write_lock, self._writer.connect() as conn, conn.begin():
            result = conn.execute(log.delete().where(log.c.time_us < _micros(before)))
        return int(result.rowcount or 0)

    def close(self) -> None:
        self._writer.dispose()
        self._reader.dispose()

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        with self._reader.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _writing(self, *, dry_run: bool) -> Iterator[_Transaction]:
        with self._write_lock, self._writer.connect() as conn, conn.begin() as tx:
            writes = _Transaction.begin(conn, now=self._clock())
            yield writes
            writes.finish()
            if dry_run:
                tx.rollback()


class _Transaction:
    """One write transaction: allocates resourceVersions, writes rows and logs each change."""

    def __init__(self, conn: sa.Connection, *, now: datetime, resource_version: int) -> None:
        self._conn = conn
        self._now = now
        self._start = resource_version
        self._version = resource_version

    @classmethod
    def begin(cls, conn: sa.Connection, *, now: datetime) -> _Transaction:
        """Lock the state row first: writers queue here and commit in version order."""
        version = int(_state(conn, lock=True).resource_version)
        return cls(conn, now=now, resource_version=version)

    def create(self, obj: Object) -> Object:
        key = objects.key_of(obj)
        if _load(self._conn, key) is not None:
            raise base.AlreadyExistsError(*key)
        new = objects.created(obj, uid=str(uuid.uuid4()), now=self._now)
        return self._put("ADDED", key, new, old=None)

    def update(self, obj: Object) -> Object:
        key = objects.key_of(obj)
        old = self._require(key, expected=objects.resource_version(obj))
        new = objects.replaced(obj, old=old)
        if objects.is_finished(new):
            return self._remove(key, new)
        if objects.same_content(new, old):
            return old
        return self._put("MODIFIED", key, new, old=old)

    def delete(self, key: ObjectKey, *, expected: int | None) -> Object:
        return self._delete(key, self._require(key, expected=expected))

    def finish(self) -> None:
        if self._version != self._start:
            self._conn.execute(schema.state.update().values(resource_version=self._version))

    def _require(self, key: ObjectKey, *, expected: int | None) -> Object:
        old = _load(self._conn, key)
        if old is None:
            raise base.NotFoundError(*key)
        current = objects.resource_version(old)
        if expected is not None and current is not None and expected != current:
            raise base.ConflictError(*key, expected=expected, current=current)
        return old

    def _delete(self, key: ObjectKey, obj: Object) -> Object:
        """Remove `obj`, or mark it deleting while finalizers hold it."""
        if not objects.finalizers(obj):
            return self._remove(key, obj)
        if objects.is_deleting(obj):
            return obj
        return self._put("MODIFIED", key, objects.marked_deleting(obj, now=self._now), old=obj)

    def _remove(self, key: ObjectKey, obj: Object) -> Object:
        final = objects.versioned(obj, self._next_version())
        self._conn.execute(schema.objects.delete().where(_where_key(schema.objects, key)))
        self._conn.execute(schema.owner_refs.delete().where(_where_key(schema.owner_refs, key)))
        self._log("DELETED", key, objects.dumps(final))
        for dependent in self._dependents(obj["metadata"].get("uid"), key.namespace):
            found = _load(self._conn, dependent)
            if found is not None:
                self._delete(dependent, found)
        return final

    def _dependents(self, uid: str | None, namespace: str) -> list[ObjectKey]:
        """Objects naming `uid` as owner, in the owner's namespace or fleet-scoped."""
        if not uid:
            return []
        refs = schema.owner_refs
        query = sa.select(refs.c.kind, refs.c.namespace, refs.c.name).where(refs.c.owner_uid == uid)
        if namespace:
            query = query.where(refs.c.namespace.in_([namespace, ""]))
        query = query.order_by(refs.c.kind, refs.c.namespace, refs.c.name)
        return [ObjectKey(*row) for row in self._conn.execute(query)]

    def _put(
        self, type_: base.EventType, key: ObjectKey, obj: Object, *, old: Object | None
    ) -> Object:
        new = objects.versioned(obj, self._next_version())
        data = objects.dumps(new)
        if old is None:
            self._conn.execute(schema.objects.insert().values(**key._asdict(), data=data))
        else:
            where = _where_key(schema.objects, key)
            self._conn.execute(schema.objects.update().where(where).values(data=data))
        self._index_owners(key, new, old=old)
        self._log(type_, key, data, previous=objects.dumps(old) if old is not None else None)
        return new

    def _index_owners(self, key: ObjectKey, new: Object, *, old: Object | None) -> None:
        uids = objects.owner_uids(new)
        if old is not None and uids == objects.owner_uids(old):
            return
        refs = schema.owner_refs
        self._conn.execute(refs.delete().where(_where_key(refs, key)))
        if uids:
            rows = [{"owner_uid": uid, **key._asdict()} for uid in sorted(uids)]
            self._conn.execute(refs.insert(), rows)

    def _log(
        self, type_: base.EventType, key: ObjectKey, data: str, *, previous: str | None = None
    ) -> None:
        row = {
            "resource_version": self._version,
            "type": type_,
            **key._asdict(),
            "data": data,
            "previous": previous,
        }
        self._conn.execute(schema.events.insert().values(**row))

    def _next_version(self) -> int:
        self._version += 1
        return self._version


def _state(conn: sa.Connection, *, lock: bool = False) -> sa.Row[Any]:
    query = sa.select(schema.state).where(schema.state.c.id == schema.STATE_ID)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).one()


def _load(conn: sa.Connection, key: ObjectKey) -> Object | None:
    query = sa.select(schema.objects.c.data).where(_where_key(schema.objects, key))
    data = conn.execute(query).scalar_one_or_none()
    return None if data is None else objects.loads(data)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    """Exact epoch microseconds (a float timestamp rounds at this scale)."""
    return (moment - _EPOCH) // _MICROSECOND


def _audit_row(record: base.AuditRecord) -> dict[str, Any]:
    return {
        "time_us": _micros(record.time),
        "request_id": record.request_id,
        "level": record.level,
        "principal": record.user,
        "source": record.source,
        "verb": record.verb,
        "kind": record.kind,
        "namespace": record.namespace,
        "name": record.name,
        "subresource": record.subresource,
        "path": record.path,
        "code": record.code,
        "resource_version": record.resource_version,
        # Python's json: a request body may hold integers past 64 bits, which orjson refuses.
        "body": None if record.body is None else json.dumps(record.body, separators=(",", ":")),
    }


def _audit_record(row: sa.Row[Any]) -> base.AuditRecord:
    return base.AuditRecord(
        time=_EPOCH + row.time_us * _MICROSECOND,
        request_id=row.request_id,
        level=row.level,
        user=row.principal,
        source=row.source,
        verb=row.verb,
        kind=row.kind,
        namespace=row.namespace,
        name=row.name,
        subresource=row.subresource,
        path=row.path,
        code=row.code,
        resource_version=row.resource_version,
        body=None if row.body is None else json.loads(row.body),
    )
