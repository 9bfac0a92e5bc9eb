"""Every store test runs twice: on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from inferplane import store as store_pkg
from tests.support import postgres


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: a fresh SQLite file, or the emptied PostgreSQL database."""
    if request.param == "sqlite":
        return store_pkg.sqlite_url(tmp_path)
    server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
    url: str = request.getfixturevalue("postgres_url")
    server.empty_database(sa.make_url(url).database or "")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[store_pkg.Store]:
    opened = store_pkg.open_store(store_url)
    yield opened
    opened.close()
