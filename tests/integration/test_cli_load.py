"""`inferplane load` against a real OpenAI-shaped server on loopback (the upstream stub,
which wants a key): what a user sees, and the --json series."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from inferplane.cli import main
from tests.support.control import free_port
from tests.support.gateway_process import StubProcess

pytestmark = pytest.mark.integration

KEY = "sk-load-test"


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    process = StubProcess(tmp_path_factory.mktemp("stub"), extra=["--require-key", KEY])
    process.start()
    yield process
    process.stop()


def load(tmp_path: Path, *args: str, key: str | None = None) -> Result:
    env = {
        "INFERPLANE_API_KEY": key,
        "INFERPLANE_CONFIG": str(tmp_path / "config"),
        "INFERPLANE_DATA_DIR": str(tmp_path / "data"),
        "INFERPLANE_CONTEXT": None,
        "COLUMNS": "200",
    }
    return CliRunner().invoke(main.app, ["load", "-m", "demo", *args], env=env)


def test_a_stepped_run_completes_requests_and_writes_its_series(
    stub: StubProcess, tmp_path: Path
) -> None:
    series = tmp_path / "load.json"
    result = load(
        tmp_path, "--url", stub.url, "--steps", "1:1,2:1.5", "--json", str(series), key=KEY
    )
    assert result.exit_code == 0, result.output
    assert "STEP" in result.stdout and "TTFT-P50" in result.stdout
    assert "errors: 0" in result.stdout
    document = json.loads(series.read_text())
    assert [s["clients"] for s in document["steps"]] == [1, 2]
    assert document["total"]["requests"] > 0 and document["total"]["errors"] == {}
    assert document["total"]["ttft_p50_ms"] is not None
    rows = document["series"]
    assert len(rows) >= 2 and rows[0]["time"] == 0 and rows[-1]["clients"] == 2
    assert sum(r["completed"] for r in rows) == document["total"]["requests"]
    assert stub.stats()["last_body"]["stream"] is True


def test_the_demo_key_that_up_keeps_is_the_default_for_a_local_gateway(
    stub: StubProcess, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "demo-api-key").write_text(KEY + "\n")
    result = load(tmp_path, "--url", stub.url, "-c", "2", "-d", "1", "--no-stream")
    assert result.exit_code == 0, result.output
    assert "errors: 0" in result.stdout
    assert stub.stats()["last_body"]["stream"] is False


def test_a_refused_key_stops_the_run_and_points_at_api_key(
    stub: StubProcess, tmp_path: Path
) -> None:
    result = load(tmp_path, "--url", stub.url, "-c", "2", "-d", "30", key="sk-wrong")
    assert result.exit_code == 1
    assert "first error: HTTP 401" in result.output and "invalid API key" in result.output
    assert "--api-key" in result.output
    assert "stopping: no request succeeded" in result.output
    assert "401:" in result.stdout  # the summary counts them


def test_a_gateway_that_is_not_there_is_named_and_exits_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = load(tmp_path, "--url", url, "-c", "1", "-d", "0.5", key=KEY)
    assert result.exit_code == 1
    assert f"cannot connect to {url}" in result.output
    assert "inferplane up" in result.output and "--url" in result.output
