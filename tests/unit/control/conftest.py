"""Fixtures of the control plane's unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplane import store as store_pkg


@pytest.fixture
def store(tmp_path: Path) -> Iterator[store_pkg.Store]:
    """A real SQLite store of the test's own, for controllers reconciled by hand."""
    opened = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    yield opened
    opened.close()
