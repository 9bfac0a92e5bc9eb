"""The autoscaler on `inferplane up` with real agents, engines and gateway (issue 13): load
through the gateway drives the demo deployment from its minimum of 2 up to its maximum of 4,
and back to 2 once the load stops; each decision is a Scaled event that `describe` shows;
no request fails on the way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import up_process
from tests.support.engine_process import wait_for
from tests.support.traffic import Traffic
from tests.support.up_process import UpProcess

pytestmark = pytest.mark.integration
# Short windows so the test runs in seconds; one request in flight per replica is the target.
POLICY = {"target": 1, "stableWindowSeconds": 6, "panicWindowSeconds": 2}


@pytest.mark.timeout(300)
def test_load_through_the_gateway_scales_the_demo_up_and_back_down(tmp_path: Path) -> None:
    up = UpProcess(tmp_path)
    up.start()
    pids: set[int] = set()
    try:
        endpoint = up.endpoint()
        pids = up.descendants()
        with up.client() as client:
            client.patch(
                "Deployment", "demo", {"spec": {"autoscaling": POLICY}}, namespace="default"
            )
            traffic = Traffic(endpoint, up.api_key(), clients=6, max_tokens=64).start()
            try:
                wait_for(
                    lambda: len(up_process.ready_replicas(client)) == 4,
                    timeout=120,
                    what="4 Ready replicas under load",
                )
            finally:
                traffic.stop()
            assert not traffic.errors, traffic.errors[:5]
            assert not traffic.cut()
            wait_for(
                lambda: len(up_process.replicas(client)) == 2,
                timeout=120,
                what="back to the minimum of 2",
            )
        env = {**up.env, "INFERPLANE_SERVER": up.url}
        shown = subprocess.run(
            [sys.executable, "-m", "inferplane", "describe", "deployment", "demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert "Autoscaling:" in shown.stdout
        scaled = [line for line in shown.stdout.splitlines() if "Scaled" in line]
        assert any("→ 4" in line or "→ 3" in line for line in scaled), shown.stdout
        assert any("→ 2: " in line for line in scaled), shown.stdout
        assert up.interrupt() == 0, up.output()
    finally:
        up.kill_all(pids)
