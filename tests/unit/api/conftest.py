"""Fixtures of the api tests."""

from __future__ import annotations

import pytest

from . import samples


@pytest.fixture(params=sorted(samples.MINIMAL))
def kind(request: pytest.FixtureRequest) -> str:
    """Each kind in turn."""
    return str(request.param)
