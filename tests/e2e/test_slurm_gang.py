"""A multi-node gang end to end on a Slurm plane (issue 14, item 4): a Deployment with
`resources.nodes: 2` and one GPU per node is placed by the scheduler as one gang on the
plane's two GPU nodes, started by the agent as one Slurm job over both (the reference
engine: member 0 serves, member 1 follows it), and answers the official `openai` client
through the gateway. The Slurm cluster is real (tests/support/slurm.py); its GPUs are FAKE.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from inferplane import client as api_client
from tests.integration import manifests
from tests.integration.fleet import wait_for
from tests.support import slurm
from tests.support.agent_process import AgentProcess
from tests.support.control import ControlProcess
from tests.support.gateway_process import GatewayProcess
from tests.support.tiny_model import make_tiny_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NAMESPACE = "team-gang"
MISSING = slurm.missing_binaries()


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ControlProcess]:
    process = ControlProcess(tmp_path / "control")
    process.start()
    yield process
    process.stop()


def _objects(model: Path) -> list[dict[str, Any]]:
    deployment = manifests.deployment(
        "big",
        NAMESPACE,
        engine={"recipe": "reference", "args": ["--kv-cache-memory", "8MiB"]},
        resources={"nodes": 2, "cpu": "1", "memory": "512Mi", "devices": [{"count": 1}]},
    )
    return [
        {
            "apiVersion": "inferplane.dev/v1",
            "kind": "Model",
            "metadata": {"name": "tiny", "namespace": NAMESPACE},
            "spec": {"versions": [{"name": "v1", "source": f"file://{model}"}]},
        },
        deployment,
        {
            "apiVersion": "inferplane.dev/v1",
            "kind": "Service",
            "metadata": {"name": "big", "namespace": NAMESPACE},
            "spec": {"routes": [{"deployment": "big"}]},
        },
        manifests.apikey("user", NAMESPACE, "viewer"),
    ]


def _ready(admin: api_client.Client) -> dict[str, Any] | None:
    for replica in admin.list("Replica", namespace=NAMESPACE).items:
        if (replica.get("status") or {}).get("phase") == "Ready":
            return replica
    return None


@pytest.mark.skipif(bool(MISSING), reason=f"Slurm not installed: {MISSING} (make slurm)")
@pytest.mark.skipif(os.geteuid() != 0, reason="the Slurm daemons need root")
def test_a_two_node_gang_runs_as_one_slurm_job_and_serves(
    control: ControlProcess, tmp_path: Path
) -> None:
    model = make_tiny_model(tmp_path / "tiny")
    with (
        slurm.running_slurm() as cluster,
        api_client.Client(control.url, control.admin_token) as admin,
    ):
        agent: AgentProcess | None = None
        try:
            slurm_spec = {"partition": cluster.partition}
            admin.create(manifests.cluster("hpc", runtime="slurm", slurm=slurm_spec))
            join = manifests.apikey("join-hpc", "inferplane-system", "join")
            join["spec"]["cluster"] = "hpc"
            token = admin.create(join)["status"]["token"]
            agent = AgentProcess(
                control.url, "", "hpc", tmp_path / "agent", extra_args=["--join-token", token],
                env={"SLURM_CONF": str(cluster.conf)},
            )  # fmt: skip
            agent.start()
            key = [admin.create(obj) for obj in _objects(model)][-1]["status"]["token"]
            replica = wait_for("the gang Ready", lambda: _ready(admin), timeout=180)
            assert replica["spec"]["nodes"] == [0, 1], "one gang: both nodes of the pool"
            jobs = cluster.job_ids()
            assert len(jobs) == 1, "one job for the whole gang"
            shown = cluster.show_job(jobs[0])
            assert "NumNodes=2" in shown, shown
            gateway = GatewayProcess(
                tmp_path / "gw", control=control.url, token=control.admin_token,
                extra=["--no-access-log"],
            )  # fmt: skip
            (tmp_path / "gw").mkdir()
            gateway.start()
            try:
                with openai.OpenAI(
                    base_url=f"{gateway.url}/v1", api_key=key, max_retries=3
                ) as client:
                    answer = client.chat.completions.create(
                        model="big", messages=[{"role": "user", "content": "hi"}], max_tokens=4
                    )
                assert answer.choices[0].message.content is not None
            finally:
                gateway.stop()
        finally:
            if agent is not None:
                agent.stop()
            cluster.cancel_all()
