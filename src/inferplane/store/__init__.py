"""Persistence and watch: objects as JSON dicts, a global resourceVersion and a change log.

`open_store(url)` gives a `Store` on SQLite (the default, `sqlite_url(data_dir)`) or
PostgreSQL; `WatchHub` fans the change log out to many watchers.
"""

from inferplane.store.base import (
    AlreadyExistsError,
    ConflictError,
    GoneError,
    NotFoundError,
    ObjectError,
    Store,
    StoreError,
    WatchEvent,
)
from inferplane.store.engines import open_store, sqlite_url
from inferplane.store.watch import WatchHub

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "GoneError",
    "NotFoundError",
    "ObjectError",
    "Store",
    "StoreError",
    "WatchEvent",
    "WatchHub",
    "open_store",
    "sqlite_url",
]
