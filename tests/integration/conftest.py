from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.control import ControlProcess

_namespaces = itertools.count()


@pytest.fixture(scope="module")
def control(control_plane: ControlProcess) -> ControlProcess:
    """The module's control plane, by its short name."""
    return control_plane


@pytest.fixture
def namespace() -> str:
    """A fresh namespace per test, so tests sharing a control plane never see each other."""
    return f"ns-{next(_namespaces)}"


@pytest.fixture
def fresh_control(tmp_path: Path) -> Iterator[ControlProcess]:
    """A control plane of the test's own, for tests that restart or reconfigure it."""
    process = ControlProcess(tmp_path / "control")
    yield process
    process.stop()
