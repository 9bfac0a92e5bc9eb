"""`inferplane up` through failures: a workload plane killed, the control plane stopped and
restarted."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import engine_tokens, up_process
from tests.support.control import ControlProcess
from tests.support.engine_process import wait_for
from tests.support.up_process import UpProcess

pytestmark = pytest.mark.integration


def _pid_of(pids: set[int], *words: str) -> int:
    found = [p for p in pids if all(w in up_process.cmdline(p) for w in words)]
    assert len(found) == 1, [up_process.cmdline(p) for p in pids]
    return found[0]


@pytest.mark.timeout(300)
def test_a_killed_plane_s_replica_moves_to_the_other_plane(tmp_path: Path) -> None:
    up = UpProcess(tmp_path, args=["--heartbeat-grace", "3", "--eviction-grace", "3"])
    up.start()
    pids: set[int] = set()
    try:
        up.endpoint()
        pids = up.descendants()
        with up.client() as client:
            before = up_process.ready_replicas(client)
            lost = next(r for r in before if r["spec"]["cluster"] == "local-a")
            os.kill(_pid_of(pids, " agent ", "--cluster local-a"), signal.SIGKILL)

            def moved() -> bool:
                ready = up_process.ready_replicas(client)
                return (
                    len(ready) == 2
                    and {r["spec"]["cluster"] for r in ready} == {"local-b"}
                    and lost["metadata"]["name"] not in {r["metadata"]["name"] for r in ready}
                )

            wait_for(moved, timeout=180, what="the lost replica Ready again on local-b")
            for replica in up_process.ready_replicas(client):
                token = engine_tokens.engine_token(client, replica)
                assert up_process.complete(replica["status"]["url"].rstrip("/"), token)
            assert client.get("Cluster", "local-a")["status"]["phase"] == "NotReady"
        pids |= up.descendants()
        assert up.interrupt() == 0, up.output()
        wait_for(lambda: not up_process.alive(pids), timeout=30, what="every child gone")
    finally:
        up.kill_all(pids)
    assert "agent local-a exited" in up.output()


@pytest.mark.timeout(300)
def test_replicas_outlive_the_control_plane_and_survive_its_restart(tmp_path: Path) -> None:
    up = UpProcess(tmp_path)
    up.start()
    pids: set[int] = set()
    control = ControlProcess(up.data_dir, port=up.port)
    try:
        up.endpoint()
        pids = up.descendants()
        engines = {p for p in pids if " engine " in up_process.cmdline(p)}
        assert len(engines) == 2
        with up.client() as client:
            ready = up_process.ready_replicas(client)
            before = {
                r["metadata"]["name"]: (r["status"]["url"], r["status"]["restarts"]) for r in ready
            }
            tokens = {r["status"]["url"]: engine_tokens.engine_token(client, r) for r in ready}
        assert len(before) == 2
        control_pid = _pid_of(pids, " control ")
        os.kill(control_pid, signal.SIGTERM)
        wait_for(lambda: not up_process.alive({control_pid}), timeout=30, what="control gone")
        for _ in range(3):  # the planes keep serving while the control plane is away
            for url, _restarts in before.values():
                assert up_process.complete(url.rstrip("/"), tokens[url])
            time.sleep(1)
        assert up.process is not None and up.process.poll() is None
        restarted = time.time()
        control.start(timeout=60)
        with up.client() as client:

            def heard_again() -> bool:
                for cluster in client.list("Cluster").items:
                    beat = (cluster.get("status") or {}).get("lastHeartbeatTime")
                    if not beat or datetime.fromisoformat(beat).timestamp() < restarted:
                        return False
                return True

            wait_for(heard_again, timeout=60, what="both agents heartbeating again")
            time.sleep(3)  # a few resync rounds
            after = {
                r["metadata"]["name"]: (r["status"]["url"], r["status"]["restarts"])
                for r in up_process.ready_replicas(client)
            }
        assert after == before
        assert up_process.alive(engines) == engines  # the same engine processes
        for url, _restarts in after.values():
            assert up_process.complete(url.rstrip("/"), tokens[url])  # the same tokens
        assert up.interrupt() == 0, up.output()
        wait_for(lambda: not up_process.alive(pids), timeout=30, what="every child gone")
    finally:
        control.stop()
        up.kill_all(pids)
    assert "control plane exited" in up.output()
