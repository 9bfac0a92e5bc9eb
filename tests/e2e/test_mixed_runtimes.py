"""Two planes of different runtimes serve one Service (issue 14): a process plane and a Slurm
plane (a real slurmctld and slurmd on this machine, tests/support/slurm.py, GPUs FAKE there).
The deployment runs on the process plane first; the plane is drained while streamed chat
completions run through the gateway, and the replica moves to the Slurm plane make-before-
break: no request fails, no stream is cut, and the Service is then served from a Slurm job.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferplane import client as api_client
from inferplane.api import wellknown
from tests.integration import manifests
from tests.integration.fleet import wait_for
from tests.support import slurm
from tests.support.agent_process import AgentProcess
from tests.support.control import ControlProcess
from tests.support.gateway_process import GatewayProcess
from tests.support.tiny_model import make_tiny_model
from tests.support.traffic import Traffic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

NAMESPACE = "team-mixed"
MISSING = slurm.missing_binaries()
NOT_ROOT = os.geteuid() != 0


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ControlProcess]:
    process = ControlProcess(tmp_path / "control")
    process.start()
    yield process
    process.stop()


def _join_token(admin: api_client.Client, cluster: str) -> str:
    join = manifests.apikey(f"join-{cluster}", "inferplane-system", "join")
    join["spec"]["cluster"] = cluster
    return str(admin.create(join)["status"]["token"])


def _agent(
    control: ControlProcess,
    admin: api_client.Client,
    cluster: str,
    work: Path,
    env: dict[str, str] | None = None,
) -> AgentProcess:
    agent = AgentProcess(
        control.url,
        "",
        cluster,
        work / f"agent-{cluster}",
        extra_args=["--join-token", _join_token(admin, cluster)],
        env=env or {},
    )
    agent.start()
    return agent


def _deploy(admin: api_client.Client, model: Path) -> str:
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "inferplane.dev/v1",
            "kind": "Model",
            "metadata": {"name": "tiny", "namespace": NAMESPACE},
            "spec": {"versions": [{"name": "v1", "source": f"file://{model}"}]},
        },
        manifests.deployment(
            "chat",
            NAMESPACE,
            engine={"recipe": "reference", "args": ["--kv-cache-memory", "8MiB"]},
            resources={"cpu": "1", "memory": "512Mi"},
        ),
        {
            "apiVersion": "inferplane.dev/v1",
            "kind": "Service",
            "metadata": {"name": "chat", "namespace": NAMESPACE},
            "spec": {"routes": [{"deployment": "chat"}]},
        },
        {**manifests.apikey("user", NAMESPACE, "viewer")},
    ]
    made = [admin.create(obj) for obj in objects]
    return str(made[-1]["status"]["token"])


def _ready_on(admin: api_client.Client) -> list[str]:
    """The clusters of the deployment's Ready replicas."""
    replicas = admin.list("Replica", namespace=NAMESPACE).items
    return sorted(
        r["spec"].get("cluster") or ""
        for r in replicas
        if (r.get("status") or {}).get("phase") == "Ready"
        and not r["metadata"].get("deletionTimestamp")
    )


@pytest.mark.skipif(bool(MISSING), reason=f"Slurm not installed: {MISSING} (make slurm)")
@pytest.mark.skipif(NOT_ROOT, reason="the Slurm daemons need root")
def test_a_drain_moves_a_replica_from_a_process_plane_to_a_slurm_plane_losing_nothing(
    control: ControlProcess, tmp_path: Path
) -> None:
    model = make_tiny_model(tmp_path / "tiny")
    agents: list[AgentProcess] = []
    with (
        slurm.running_slurm() as cluster,
        api_client.Client(control.url, control.admin_token) as admin,
    ):
        try:
            agents.append(_agent(control, admin, "laptop", tmp_path))
            key = _deploy(admin, model)
            wait_for(
                "a Ready replica on laptop", lambda: _ready_on(admin) == ["laptop"], timeout=120
            )
            # The Slurm plane: its Cluster says its runtime before its agent first starts.
            admin.create(
                manifests.cluster("hpc", runtime="slurm", slurm={"partition": cluster.partition})
            )
            agents.append(
                _agent(control, admin, "hpc", tmp_path, {"SLURM_CONF": str(cluster.conf)})
            )
            wait_for(
                "the Slurm plane's pools",
                lambda: (
                    admin.list("Pool").items
                    and any(p["spec"].get("cluster") == "hpc" for p in admin.list("Pool").items)
                ),
            )
            gateway = GatewayProcess(
                tmp_path / "gw",
                control=control.url,
                token=control.admin_token,
                extra=["--no-access-log"],
            )
            (tmp_path / "gw").mkdir()
            gateway.start(wait_ready=False)
            traffic = Traffic(gateway.url, key, clients=2, max_tokens=24, model="chat")
            wait_for("the Service answering", lambda: _answers(gateway, key), timeout=60)
            traffic.start()
            try:
                wait_for("traffic", lambda: len(traffic.done) >= 4, timeout=60)
                patch = {
                    "metadata": {"annotations": {wellknown.DRAIN_ANNOTATION: "true"}},
                    "spec": {"cordoned": True},
                }
                admin.patch("Cluster", "laptop", patch)
                wait_for(
                    "the replica moved to the Slurm plane",
                    lambda: _ready_on(admin) == ["hpc"],
                    timeout=180,
                )
                before = len(traffic.done)
                wait_for(
                    "traffic served from Slurm", lambda: len(traffic.done) >= before + 4, timeout=60
                )
            finally:
                traffic.stop()
                gateway.stop()
            assert not traffic.errors, traffic.errors[:5]
            assert not traffic.cut(), traffic.cut()[:5]
            assert cluster.job_ids(), "the replica runs as a Slurm job"
        finally:
            for agent in agents:
                agent.stop()
            cluster.cancel_all()


def _answers(gateway: GatewayProcess, key: str) -> bool:
    with gateway.http(key) as http:
        reply = http.post(
            "/v1/chat/completions",
            json={
                "model": "chat",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 2,
            },
        )
    return reply.status_code == 200
