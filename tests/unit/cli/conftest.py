"""Run the CLI in-process against the fake resource API, with a config of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from inferplane.cli import main, session
from tests.unit import fake_resource_api as fake


@dataclass
class Cli:
    """Invokes ``inferplane ARGS`` with the environment pointing at the fake server."""

    api: fake.FakeResourceApi
    env: dict[str, str | None]
    transport: httpx.BaseTransport | None = None
    """Replaces the fake server's transport, e.g. with one that cannot connect."""

    def __call__(self, *args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(
            main.app,
            list(args),
            input=input,
            env=self.env,
            obj=session.Session(transport=self.transport or self.api.transport),
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result


@pytest.fixture
def api() -> fake.FakeResourceApi:
    return fake.FakeResourceApi()


@pytest.fixture
def cli(api: fake.FakeResourceApi, tmp_path: Path) -> Cli:
    env: dict[str, str | None] = {
        "INFERPLANE_SERVER": fake.SERVER,
        "INFERPLANE_TOKEN": fake.TOKEN,
        "INFERPLANE_CONFIG": str(tmp_path / "config"),
        "INFERPLANE_DATA_DIR": str(tmp_path / "data"),
        "INFERPLANE_NAMESPACE": None,
        "INFERPLANE_CONTEXT": None,
        "COLUMNS": "200",
    }
    return Cli(api, env)
