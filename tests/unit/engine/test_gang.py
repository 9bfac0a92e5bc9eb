"""The reference engine in a multi-node gang: the variables name its place; a worker loads
nothing, answers /health, and exits when its leader is lost, so the runtime restarts the gang.
Workers run as real processes here; the leader is a plain HTTP server."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from inferplane.engine import gang
from tests.support.control import free_port


def test_no_gang_variables_is_no_gang() -> None:
    assert gang.member_of({}) is None


def test_the_leader_and_a_worker_read_their_place() -> None:
    env = {"LWS_WORKER_INDEX": "1", "LWS_GROUP_SIZE": "2", "LWS_LEADER_ADDRESS": "10.0.0.5"}
    assert gang.member_of(env) == gang.Member(1, 2, "http://10.0.0.5:8000")
    url = {**env, "INFERPLANE_GANG_LEADER_URL": "http://10.0.0.5:9001/"}
    assert gang.member_of(url) == gang.Member(1, 2, "http://10.0.0.5:9001")
    leader = gang.member_of({"LWS_WORKER_INDEX": "0", "LWS_GROUP_SIZE": "2"})
    assert leader is not None and leader.leader


@pytest.mark.parametrize(
    "env",
    [
        {"LWS_WORKER_INDEX": "x", "LWS_GROUP_SIZE": "2"},
        {"LWS_WORKER_INDEX": "2", "LWS_GROUP_SIZE": "2"},
        {"LWS_WORKER_INDEX": "1", "LWS_GROUP_SIZE": "2"},  # a worker with no leader to follow
    ],
)
def test_variables_that_describe_no_member_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(gang.GangError):
        gang.member_of(env)


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def leader() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            return httpx.get(url, timeout=1)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the worker never answered")


@pytest.mark.integration
def test_a_worker_follows_its_leader_and_exits_when_it_is_lost(
    leader: http.server.ThreadingHTTPServer,
) -> None:
    port = free_port()
    code = (
        "import sys; from inferplane.engine import gang; "
        "m = gang.member_of(); "
        f"sys.exit(gang.serve_worker(m, host='127.0.0.1', port={port}, lost_seconds=1.5))"
    )
    env = {
        **os.environ,
        "LWS_WORKER_INDEX": "1",
        "LWS_GROUP_SIZE": "2",
        "INFERPLANE_GANG_LEADER_URL": f"http://127.0.0.1:{leader.server_address[1]}",
    }
    with subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as worker:
        try:
            health = f"http://127.0.0.1:{port}/health"
            answer = _wait_healthy(health, worker)
            assert answer.status_code == 200 and answer.json()["member"] == 1
            deadline = time.monotonic() + 10
            while not answer.json()["leaderSeen"] and time.monotonic() < deadline:
                time.sleep(0.2)
                answer = httpx.get(health, timeout=1)
            assert answer.json()["leaderSeen"]
            leader.shutdown()
            leader.server_close()
            assert worker.wait(timeout=15) == 1, "a lost leader ends the worker, failing"
            assert b"lost" in (worker.stdout.read() if worker.stdout else b"")
        finally:
            worker.kill()


@pytest.mark.integration
def test_inferplane_engine_as_a_worker_loads_no_model_and_stops_on_sigterm(
    leader: http.server.ThreadingHTTPServer,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LWS_WORKER_INDEX": "1",
        "LWS_GROUP_SIZE": "2",
        "INFERPLANE_GANG_LEADER_URL": f"http://127.0.0.1:{leader.server_address[1]}",
    }
    argv = [sys.executable, "-m", "inferplane", "engine", "--model", "/nonexistent/model",
            "--port", str(port)]  # fmt: skip
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as worker:
        try:
            assert _wait_healthy(f"http://127.0.0.1:{port}/health", worker).status_code == 200
            worker.send_signal(signal.SIGTERM)
            # uvicorn shuts down, then raises the signal it caught again, as it does for
            # every server it runs: the worker ends as SIGTERM asked, not as a failure.
            assert worker.wait(timeout=15) == -signal.SIGTERM
        finally:
            worker.kill()
