"""`inferplane up` as `make run` starts it: ready, usable by the CLI, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.control import free_port

pytestmark = pytest.mark.integration


def test_up_serves_the_control_plane_and_stops_on_sigint(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "INFERPLANE_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "inferplane", "up", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "up never became ready"
            time.sleep(0.1)
        cli_env = {**env, "INFERPLANE_SERVER": f"http://127.0.0.1:{port}"}
        cli_env.pop("INFERPLANE_TOKEN", None)
        cli_env["INFERPLANE_CONFIG"] = str(tmp_path / "no-config")
        listed = subprocess.run(
            [sys.executable, "-m", "inferplane", "get", "clusters"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.returncode == 0, listed.stderr
        assert "No resources found" in listed.stderr
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "inferplane is up" in stderr
    assert (tmp_path / "admin-token").exists()


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
