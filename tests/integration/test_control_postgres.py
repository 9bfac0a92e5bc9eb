"""The control plane on a real PostgreSQL server, including two replicas sharing it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.manifests import deployment, model, path
from tests.integration.test_control_watch import read_events
from tests.support import postgres
from tests.support.control import ControlProcess

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def database(postgres_server: postgres.PostgresServer, postgres_url: str) -> str:
    postgres_server.empty_database(sa.make_url(postgres_url).database or "")
    return postgres_url


@pytest.fixture
def replicas(tmp_path: Path, database: str) -> Iterator[tuple[ControlProcess, ControlProcess]]:
    first = ControlProcess(tmp_path / "a", store_url=database)
    second = ControlProcess(tmp_path / "b", store_url=database)
    first.start()
    # The second replica must accept the first's admin token: same data dir contents.
    second.data_dir.mkdir(parents=True)
    (second.data_dir / "admin-token").write_text(first.admin_token)
    second.start()
    yield first, second
    second.stop()
    first.stop()


def test_a_write_to_one_replica_reaches_a_watch_on_the_other(
    replicas: tuple[ControlProcess, ControlProcess],
) -> None:
    first, second = replicas
    with first.http() as writer, second.http() as reader:
        start = reader.get(path("models", "pg")).json()["metadata"]["resourceVersion"]
        for i in range(3):
            assert writer.post(path("models", "pg"), json=model(f"m{i}", "pg")).status_code == 201
        events = read_events(reader, path("models", "pg"), count=3, resourceVersion=start)
        stale = writer.get(path("models", "pg", "m0")).json()
        reader.patch(path("models", "pg", "m0"), json={"spec": {"description": "b"}})
        stale["spec"]["description"] = "a"
        conflict = writer.put(path("models", "pg", "m0"), json=stale)
    assert [e["object"]["metadata"]["name"] for e in events] == ["m0", "m1", "m2"]
    assert conflict.status_code == 409, "optimistic concurrency holds across replicas"


def test_a_watch_survives_a_restart_on_postgres(tmp_path: Path, database: str) -> None:
    control = ControlProcess(tmp_path / "c", store_url=database)
    control.start()
    try:
        with control.http() as http:
            start = http.get(path("models", "pg")).json()["metadata"]["resourceVersion"]
            http.post(path("models", "pg"), json=model("before", "pg"))
        control.stop()
        control.start()
        with control.http() as http:
            http.post(path("models", "pg"), json=model("after", "pg"))
            events = read_events(http, path("models", "pg"), count=2, resourceVersion=start)
    finally:
        control.stop()
    assert [e["object"]["metadata"]["name"] for e in events] == ["before", "after"]


def leading(control: ControlProcess) -> bool:
    with control.http("") as http:
        metrics = http.get("/metrics").text
    return "inferplane_controller_leader 1.0" in metrics


def test_one_replica_runs_the_controllers_and_the_other_takes_over(
    replicas: tuple[ControlProcess, ControlProcess],
) -> None:
    first, second = replicas
    assert leading(first) and not leading(second)
    first.stop()  # a graceful stop releases the lease
    deadline = time.monotonic() + 20
    while not leading(second):
        assert time.monotonic() < deadline, "the second replica never took over"
        time.sleep(0.2)
    with second.http() as http:
        http.post(path("deployments", "pg"), json=deployment("chat", "pg", model="none"))
        while True:
            status = http.get(path("deployments", "pg", "chat")).json()["status"]
            if status.get("conditions"):
                break
            assert time.monotonic() < deadline, "no controller reconciled after the takeover"
            time.sleep(0.1)
    assert status["conditions"][0]["reason"] == "ModelNotFound"
