from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.control import ControlProcess


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlProcess]:
    """A real `inferplane control` process on a loopback port, one per test module."""
    process = ControlProcess(tmp_path_factory.mktemp("control"))
    process.start()
    yield process
    process.stop()
