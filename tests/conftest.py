"""Fixtures shared by every test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.support import postgres
from tests.support.control import ControlProcess

# Two shared cores make example timings meaningless: no per-example deadline, no too-slow check.
settings.register_profile("inferplane", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("inferplane")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """A real PostgreSQL server for the whole session (INFERPLANE_SKIP_POSTGRES=1 skips)."""
    if os.environ.get("INFERPLANE_SKIP_POSTGRES") == "1":
        pytest.skip("INFERPLANE_SKIP_POSTGRES=1")
    try:
        with postgres.running_postgres() as server:
            yield server
    except postgres.PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: postgres.PostgresServer) -> str:
    """The SQLAlchemy URL of a database in the session's PostgreSQL server."""
    return postgres_server.create_database("inferplane")


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlProcess]:
    """A real `inferplane control` process on a loopback port, one per test module."""
    process = ControlProcess(tmp_path_factory.mktemp("control"))
    process.start()
    yield process
    process.stop()
