"""Opening a store from a URL: the little that differs between SQLite and PostgreSQL.

Each backend gets two engines over one connection pool: a `writer` whose transactions
serialise (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the state row lock `sql.py` takes) and a
`reader` whose transactions are snapshots (SQLite WAL: a deferred `BEGIN`; PostgreSQL:
REPEATABLE READ).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from inferplane.store import base, objects, schema, sql

DB_FILE = "inferplane.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "inferplane_write"  # execution option the SQLite begin hook reads


def sqlite_url(data_dir: Path) -> str:
    """The URL of the default store: one SQLite file in the control plane's data directory."""
    return f"sqlite:///{Path(data_dir).resolve() / DB_FILE}"


def open_store(url: str, *, clock: Callable[[], datetime] = objects.utcnow) -> base.Store:
    """Open (creating its tables if needed) the store at `sqlite:///PATH` or `postgresql://...`."""
    reader, writer = create_engines(url)
    schema.create(writer)
    sqlite = writer.dialect.name == "sqlite"
    return sql.SqlStore(reader=reader, writer=writer, clock=clock, serialize_writes=sqlite)


def create_engines(url: str) -> tuple[sa.Engine, sa.Engine]:
    """The (reader, writer) engine pair for a store URL."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite(parsed)
    if backend == "postgresql":
        return _postgres(parsed)
    raise ValueError(
        f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )


def _sqlite(url: sa.URL) -> tuple[sa.Engine, sa.Engine]:
    if not url.database or url.database == ":memory:":
        raise ValueError("an in-memory SQLite store cannot be shared by threads: give a file path")
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url.set(drivername="sqlite+pysqlite"))
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine, engine.execution_options(**{_WRITE: True})


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transactions out of the sqlite3 module's hands: `_sqlite_begin` emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    writing = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def _postgres(url: sa.URL) -> tuple[sa.Engine, sa.Engine]:
    engine = sa.create_engine(url.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    return engine.execution_options(isolation_level="REPEATABLE READ"), engine
