"""The processes the bench runs, as `inferplane up` starts them but on free loopback ports
and in a data dir of the bench's own: a control plane, the agents of two local planes whose
pools have room for different numbers of replicas, and a gateway."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.autoscaling.progress import note
from inferplane import client as api_client
from inferplane.cli import updemo, upgateway
from inferplane.supervisor import Child, Supervisor, http_ready

CPU_PER_REPLICA = 1
"""Cores one replica asks for (spec.resources.cpu); its engine gets as many torch threads."""
MEMORY_PER_REPLICA_GI = 1


@dataclass(frozen=True)
class Plane:
    """One local workload plane: its Cluster, region, and how many replicas its pool holds."""

    cluster: str
    region: str
    slots: int


PLANES = (Plane("local-a", "local-east", 3), Plane("local-b", "local-west", 4))


@dataclass(frozen=True)
class Fleet:
    """Where the started processes answer, and the tokens to talk to them."""

    url: str
    gateway: str
    admin_token: str
    api_key: str
    """A viewer key of namespace default, for the gateway's inference API."""
    data_dir: Path
    planes: tuple[Plane, ...]

    def client(self) -> api_client.Client:
        return api_client.Client(self.url, self.admin_token)

    def agent_log(self, cluster: str) -> Path:
        return self.data_dir / "logs" / f"agent-{cluster}.log"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running(data_dir: Path, *, planes: tuple[Plane, ...] = PLANES) -> Iterator[Fleet]:
    """The fleet started and ready; every process stopped on exit (Ctrl-C included), the
    gateway and agents (which stop their engines) before the control plane."""
    supervisor = Supervisor([], data_dir)
    try:
        yield _start(supervisor, data_dir, planes)
    finally:
        if supervisor.started:
            note("cleanup", "stopping the gateway, the agents and their engines, the control plane")
            supervisor.stop()
            signal.signal(signal.SIGINT, signal.default_int_handler)  # stop() ignored it
            note("cleanup", "every process stopped")


def _start(supervisor: Supervisor, data_dir: Path, planes: tuple[Plane, ...]) -> Fleet:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["control", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "info"]
    log = data_dir / "logs" / "control.log"
    _start_one(supervisor, Child("control plane", args, http_ready(f"{url}/readyz"), log_path=log))
    token = (data_dir / "admin-token").read_text().strip()
    with api_client.Client(url, token) as client:
        for plane in planes:
            updemo.apply_cluster(client, updemo.LocalPlane(plane.cluster, plane.region), None, None)
            join = upgateway.join_key(client, plane.cluster, _agent_dir(data_dir, plane))
            _start_one(supervisor, _agent(plane, url, token, join, data_dir), timeout=120)
        gateway_port = free_port()
        gateway_token = upgateway.gateway_key(client, data_dir)
        _start_one(supervisor, _gateway(gateway_port, url, gateway_token, data_dir))
        key = upgateway.demo_key(client, data_dir)
    return Fleet(url, f"http://127.0.0.1:{gateway_port}", token, key, data_dir, planes)


def _start_one(supervisor: Supervisor, child: Child, *, timeout: float = 60.0) -> None:
    note("start", f"{child.name} (log: {child.log_path})")
    if not supervisor.start_one(child, timeout=timeout):
        tail = child.log_path.read_text(errors="replace")[-2000:] if child.log_path else ""
        raise RuntimeError(f"{child.name} did not become ready in {timeout:.0f} s:\n{tail}")


def _agent_dir(data_dir: Path, plane: Plane) -> Path:
    return data_dir / "agents" / plane.cluster


def _agent(plane: Plane, url: str, token: str, join: str, data_dir: Path) -> Child:
    """The plane's agent, with a pool file: one node of `slots` replicas' cores and memory.
    Its engines inherit OMP_NUM_THREADS, so each uses the cores its replica asked for."""
    pool = {
        "name": "cpu",
        "nodeCount": 1,
        "cpu": str(plane.slots * CPU_PER_REPLICA),
        "memory": f"{plane.slots * MEMORY_PER_REPLICA_GI}Gi",
    }
    pool_file = data_dir / f"pools-{plane.cluster}.yaml"
    pool_file.write_text(yaml.safe_dump({"pools": [pool]}))
    args = ["agent", "--control", url, "--cluster", plane.cluster]
    args += ["--labels", f"region={plane.region},provider=local", "--pool-file", str(pool_file)]
    args += ["--data-dir", str(_agent_dir(data_dir, plane)), "--log-level", "info"]
    args += ["--load-interval", "2", "--drain-grace", "10"]

    def joined() -> bool:
        try:
            with api_client.Client(url, token, timeout=2.0) as client:
                cluster = client.get("Cluster", plane.cluster)
        except api_client.ClientError:
            return False
        return (cluster.get("status") or {}).get("phase") == "Ready"

    env = {"INFERPLANE_JOIN_TOKEN": join, "OMP_NUM_THREADS": str(CPU_PER_REPLICA)}
    log = data_dir / "logs" / f"agent-{plane.cluster}.log"
    return Child(f"agent {plane.cluster}", args, joined, env=env, log_path=log, stop_grace=30.0)


def _gateway(port: int, control: str, token: str, data_dir: Path) -> Child:
    args = ["gateway", "--port", str(port), "--control", control, "--log-level", "warning"]
    args += ["--state-dir", str(data_dir / "gateway")]
    return Child(
        "gateway",
        args,
        http_ready(f"http://127.0.0.1:{port}/readyz"),
        env={"INFERPLANE_TOKEN": token},
        log_path=data_dir / "logs" / "gateway.log",
        stop_grace=15.0,
    )
