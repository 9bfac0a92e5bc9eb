"""Where each scenario's store lives: a fresh SQLite file or a fresh PostgreSQL database."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tests.support import postgres

from inferplane import store

NAMES = ("sqlite", "postgres")


@dataclass(frozen=True)
class Place:
    store_url: str
    data_dir: Path
    """A fresh directory for the control plane's admin token and log."""


class Backend(Protocol):
    name: str

    def fresh(self) -> AbstractContextManager[Place]:
        """An empty store, removed on exit."""
        ...


@dataclass
class SqliteBackend:
    name: str = "sqlite"

    @contextmanager
    def fresh(self) -> Iterator[Place]:
        with tempfile.TemporaryDirectory(prefix="inferplane-bench-") as tmp:
            root = Path(tmp)
            (root / "store").mkdir()
            yield Place(store.sqlite_url(root / "store"), root / "control")


@dataclass
class PostgresBackend:
    server: postgres.PostgresServer
    name: str = "postgres"
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    @contextmanager
    def fresh(self) -> Iterator[Place]:
        database = f"bench_{next(self._numbers)}"
        url = self.server.create_database(database)
        try:
            with tempfile.TemporaryDirectory(prefix="inferplane-bench-") as tmp:
                yield Place(url, Path(tmp) / "control")
        finally:
            self.server.drop_database(database)


@contextmanager
def open_backend(name: str) -> Iterator[Backend]:
    """The backend by name; PostgreSQL runs a throwaway server for the block."""
    if name == "sqlite":
        yield SqliteBackend()
    elif name == "postgres":
        with postgres.running_postgres() as server:
            yield PostgresBackend(server)
    else:
        raise ValueError(f"unknown backend {name!r}: choose from {', '.join(NAMES)}")
