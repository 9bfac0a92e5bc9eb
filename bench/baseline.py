"""The baseline: the same N inserts and N updates straight through SQLAlchemy Core.

One table (name, JSON data, rv), one transaction per write, the same number of writes in
flight (threads), on the same backend; no HTTP, no validation, no change log, no watch.
SQLite gets the store's own durability settings (WAL, synchronous=NORMAL) so that the ratio
measures the API's cost, not a difference in fsyncs.
"""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from bench import objects

metadata = sa.MetaData()
table = sa.Table(
    "bench_objects",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("rv", sa.BigInteger, nullable=False),
)


def writes_per_second(url: str, *, n: int, concurrency: int) -> float:
    """Run n inserts then n updates with `concurrency` threads; answer 2n / wall seconds."""
    engine = _engine(url, concurrency)
    try:
        metadata.create_all(engine)
        return _timed_writes(engine, n=n, concurrency=concurrency)
    finally:
        engine.dispose()


def _timed_writes(engine: sa.Engine, *, n: int, concurrency: int) -> float:
    versions = itertools.count(1)  # next() on a count is atomic under the GIL

    def insert(index: int) -> None:
        body = objects.model(objects.name_of(index))
        row = {"name": objects.name_of(index), "data": json.dumps(body), "rv": next(versions)}
        with engine.begin() as conn:
            conn.execute(table.insert().values(**row))

    def update(index: int) -> None:
        body = objects.model(objects.name_of(index))
        body["spec"].update(objects.update_patch(index)["spec"])
        where = table.c.name == objects.name_of(index)
        with engine.begin() as conn:
            conn.execute(
                table.update().where(where).values(data=json.dumps(body), rv=next(versions))
            )

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.monotonic()
        list(pool.map(insert, range(n)))
        list(pool.map(update, range(n)))
        seconds = time.monotonic() - started
    return 2 * n / seconds


def _engine(url: str, concurrency: int) -> sa.Engine:
    engine = sa.create_engine(url, pool_size=concurrency, max_overflow=0)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
