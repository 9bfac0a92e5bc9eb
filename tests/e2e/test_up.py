"""`inferplane up` as `make run` starts it: the control plane, two workload planes and the
demo deployment, an endpoint that answers the openai client, stopped by Ctrl-C with nothing
left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.support import up_process
from tests.support.engine_process import wait_for
from tests.support.up_process import UpProcess

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_up_serves_the_demo_on_two_planes_and_stops_on_sigint(tmp_path: Path) -> None:
    up = UpProcess(tmp_path)
    up.start()
    pids: set[int] = set()
    try:
        endpoint = up.endpoint()
        assert endpoint == f"http://127.0.0.1:{up.gateway_port}", "the gateway is the endpoint"
        key = up.api_key()
        assert up_process.complete(endpoint, key)
        with openai.OpenAI(base_url=f"{endpoint}/v1", api_key=key) as chat:
            streamed = chat.chat.completions.create(
                model="demo",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=4,
                stream=True,
            )
            assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        with up.client() as client:
            ready = up_process.ready_replicas(client)
            assert len(ready) == 2
            assert {r["spec"]["cluster"] for r in ready} == {"local-a", "local-b"}
            assert client.get("Service", "demo", namespace="default")["spec"]["routes"]
        pids = up.descendants()
        commands = [up_process.cmdline(pid) for pid in pids]
        assert sum(" agent " in c for c in commands) == 2
        assert sum(" engine " in c for c in commands) == 2
        assert sum(" control " in c for c in commands) == 1
        assert sum(" gateway " in c for c in commands) == 1
        # The CLI on the same machine finds the control plane's admin token by itself.
        env = {**up.env, "INFERPLANE_SERVER": up.url}
        listed = subprocess.run(
            [sys.executable, "-m", "inferplane", "get", "clusters"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert "local-a" in listed.stdout and "local-b" in listed.stdout
        code = up.interrupt()
        assert code == 0, up.output()
        wait_for(lambda: not up_process.alive(pids), timeout=30, what="every child gone")
    finally:
        up.kill_all(pids)
    out = up.output()
    assert "inferplane is up" in out
    assert "curl -s" in out and "from openai import OpenAI" in out
    assert "stopped." in out


@pytest.mark.timeout(300)
def test_up_again_on_the_same_data_dir_reuses_everything(tmp_path: Path) -> None:
    first = UpProcess(tmp_path)
    first.start()
    pids: set[int] = set()
    try:
        first.endpoint()
        with first.client() as client:
            names = [r["metadata"]["name"] for r in up_process.replicas(client)]
        pids = first.descendants()
        assert first.interrupt() == 0, first.output()
        wait_for(lambda: not up_process.alive(pids), timeout=30, what="every child gone")
    finally:
        first.kill_all(pids)
    second = UpProcess(tmp_path)
    second.start()
    try:
        assert up_process.complete(second.endpoint(), second.api_key())
        assert second.api_key() == first.api_key(), "the same demo key, kept in the data dir"
        with second.client() as client:
            assert len(up_process.replicas(client)) == 2
            assert len(client.list("Deployment", namespace="default").items) == 1
            assert len(client.list("Cluster").items) == 2
            kept = [r["metadata"]["name"] for r in up_process.replicas(client)]
        assert kept == names
        pids = second.descendants()
        assert second.interrupt() == 0, second.output()
        wait_for(lambda: not up_process.alive(pids), timeout=30, what="every child gone")
    finally:
        second.kill_all(pids)


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "INFERPLANE_DATA_DIR": str(tmp_path)}
        result = subprocess.run(
            [sys.executable, "-m", "inferplane", "up", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr
