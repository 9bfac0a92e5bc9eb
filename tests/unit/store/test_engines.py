"""Opening stores from URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from inferplane.store import open_store, sqlite_url
from tests.unit.store.helpers import obj


def test_sqlite_url_points_into_the_data_dir_which_open_creates(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "data")
    assert url.startswith("sqlite:///") and url.endswith("/data/inferplane.db")
    store = open_store(url)
    try:
        store.create(obj("Cluster", "eu", namespace=None))
    finally:
        store.close()
    assert (tmp_path / "data" / "inferplane.db").exists()


@pytest.mark.parametrize("url", ["mysql://db/x", "sqlite://", "sqlite:///:memory:"])
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"SQLite|store URL"):
        open_store(url)


@pytest.mark.postgres
def test_a_plain_postgresql_url_uses_psycopg(postgres_url: str) -> None:
    plain = sa.make_url(postgres_url).set(drivername="postgresql")
    store = open_store(plain.render_as_string(hide_password=False))
    try:
        assert store.current_resource_version() >= 0
    finally:
        store.close()
