"""A real two-node Ray cluster on this machine, for the Ray runtime's tests.

`ray start --head` and one `ray start --address` worker node, each with `--num-cpus=1` and
`--num-gpus=1`. THE GPUS ARE FAKE: this machine has none; Ray is told each node has one (and
an `accelerator_type:FAKE-GPU` resource, as Ray sets on a real GPU node), so placement groups
that ask for a GPU are placed and an actor is given GPU id 0 (CUDA_VISIBLE_DEVICES=0), with
nothing behind it. Both nodes get the same fixed `--memory`, so they are one node shape.

Ray binds its own services to the machine's address, not only loopback (it replaces
`--node-ip-address=127.0.0.1` by that address, so engines listen there too). The cluster is
started with free ports (GCS, client server, worker ports at random), a short temp dir of its
own, no dashboard, no usage stats and no token authentication (whatever ~/.ray says), and is
torn down by ending every process of the two `ray start` sessions (never `ray stop`, which
ends every Ray on the machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.control import free_port

FAKE_GPU = "FAKE-GPU"
"""The accelerator type both nodes claim (their GPUs are fake, see the module docstring)."""
NODE_MEMORY = 2 * 2**30
OBJECT_STORE = 100 * 2**20
START_TIMEOUT_S = 120.0


@dataclass
class RayCluster:
    address: str
    """HOST:PORT of the head's GCS, as `ray.init` and spec.ray.address take it."""
    temp_dir: Path
    sessions: list[int] = field(default_factory=list)
    """The session ids of the `ray start` processes: every Ray process they left runs in one."""

    def processes(self) -> list[int]:
        """The pids of every process still running in the cluster's sessions."""
        return [pid for pid, sid in _sessions().items() if sid in self.sessions]

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            for pid in self.processes():
                _signal(pid, sig)
            deadline = time.monotonic() + wait
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def ray_command() -> list[str]:
    script = Path(sys.executable).parent / "ray"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


def _start(cluster: RayCluster, *args: str) -> None:
    # Ray's token authentication off, whatever ~/.ray/auth_token says: this process, a driver
    # of the cluster too, read its mode when it imported ray.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    command = [
        *ray_command(),
        "start",
        *args,
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--num-gpus=1",  # fake: see the module docstring
        f'--resources={{"accelerator_type:{FAKE_GPU}": 1}}',
        f"--memory={NODE_MEMORY}",
        f"--object-store-memory={OBJECT_STORE}",
        "--min-worker-port=0",
        "--max-worker-port=0",
        "--disable-usage-stats",
    ]
    log = cluster.temp_dir / f"start-{len(cluster.sessions)}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    cluster.sessions.append(process.pid)
    try:
        code = process.wait(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code = None
    if code != 0:
        raise RuntimeError(f"ray start failed ({code}): {log.read_text()[-3000:]}")


@contextmanager
def running_ray_cluster() -> Iterator[RayCluster]:
    """A head and one worker node, torn down afterwards whatever happened."""
    # Ray's socket paths must stay short: a temp dir of its own under /tmp.
    temp_dir = Path(tempfile.mkdtemp(prefix="ipray-", dir="/tmp"))
    port = free_port()
    cluster = RayCluster(address=f"127.0.0.1:{port}", temp_dir=temp_dir)
    try:
        _start(
            cluster,
            "--head",
            f"--port={port}",
            f"--temp-dir={temp_dir}",
            f"--ray-client-server-port={free_port()}",
            "--include-dashboard=false",
        )
        _start(cluster, f"--address={cluster.address}")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """The session's two-node Ray cluster (fake GPUs); skipped when Ray is not installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip("Ray is not installed: pip install 'ray[default]' to run the Ray tests")
    with running_ray_cluster() as cluster:
        yield cluster


def _sessions() -> dict[int, int]:
    """Every process's session id, by pid (Linux)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 3 and fields[0] != "Z":
            found[int(entry.name)] = int(fields[3])
    return found


def _signal(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
