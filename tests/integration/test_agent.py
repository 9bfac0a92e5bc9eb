"""A real control plane, a real `inferplane agent` and real reference engines on loopback.

The control plane runs without its controllers: the test writes bound Replicas itself (what
the scheduler would), which is the agent's whole input, and checks what the agent owes back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane import client as api_client
from inferplane.agent.runtime import processes
from tests.integration import manifests
from tests.support import engine_tokens, up_process
from tests.support.agent_process import AgentProcess
from tests.support.control import ControlProcess
from tests.support.engine_process import wait_for
from tests.support.tiny_model import make_tiny_model

pytestmark = pytest.mark.integration

CLUSTER = "local-a"
POOL_FILE = """\
discover: true          # the host's cpu pool too
pools:
  - name: h100
    nodeCount: 1
    pricePerHour: 98.32
    devicesPerNode:
      - name: gpu
        count: 4
        driver: gpu.nvidia.com
        attributes: {productName: H100}
        capacity: {memory: 80Gi}
"""
FINALIZERS = ["inferplane.dev/agent-stop", "inferplane.dev/release-devices"]


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlProcess]:
    process = ControlProcess(tmp_path_factory.mktemp("control"), extra_args=["--no-controllers"])
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def api(control: ControlProcess) -> Iterator[api_client.Client]:
    with api_client.Client(control.url, control.admin_token) as client:
        yield client


@pytest.fixture
def make_agent(control: ControlProcess, tmp_path: Path) -> Iterator[Any]:
    pool_file = tmp_path / "pools.yaml"
    pool_file.write_text(POOL_FILE)
    agents: list[AgentProcess] = []

    def make() -> AgentProcess:
        # The agent runs as its cluster's own identity, obtained with a join key: every test
        # here is also a test that the agent needs nothing more.
        join = manifests.apikey(f"join-{len(agents)}", "inferplane-system", "join")
        join["spec"]["cluster"] = CLUSTER
        with api_client.Client(control.url, control.admin_token) as admin:
            token = admin.create(join)["status"]["token"]
        agent = AgentProcess(
            control.url,
            "",
            CLUSTER,
            tmp_path / "agent",
            pool_file,
            extra_args=["--join-token", token],
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


def replica(name: str, model: str, *, pool: str, devices: list[int] | None = None) -> Any:
    spec: dict[str, Any] = {
        "deployment": "tiny",
        "model": {"name": "tiny", "version": "v1", "source": model},
        "engine": {"recipe": "reference", "args": ["--shutdown-grace", "5"]},
        "cluster": CLUSTER,
        "pool": pool,
        "nodes": [0],
    }
    if devices is not None:
        spec["devices"] = [{"request": "gpu", "group": "gpu", "node": 0, "indexes": devices}]
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Replica",
        "metadata": {"name": name, "namespace": "default", "finalizers": FINALIZERS},
        "spec": spec,
    }


def bind(api: api_client.Client, obj: dict[str, Any]) -> None:
    """Create the replica as the scheduler leaves it: bound, phase Scheduled."""
    api.create(obj)
    status = {"status": {"phase": "Scheduled"}}
    api.patch("Replica", obj["metadata"]["name"], status, subresource="status")


def status_of(api: api_client.Client, name: str) -> dict[str, Any]:
    try:
        found: dict[str, Any] = api.get("Replica", name).get("status") or {}
    except api_client.NotFound:
        return {}
    return found


def wait_status(
    api: api_client.Client, name: str, timeout: float = 90.0, **wanted: Any
) -> dict[str, Any]:
    def matches() -> bool:
        status = status_of(api, name)
        return all(status.get(key) == value for key, value in wanted.items())

    wait_for(matches, timeout=timeout, what=f"{name} to reach {wanted}: {status_of(api, name)}")
    return status_of(api, name)


def complete(url: str, token: str) -> str:
    """A completion from the engine itself, with the replica's engine token."""
    headers = {"Authorization": f"Bearer {token}"}
    models = httpx.get(f"{url}/v1/models", headers=headers, timeout=10).json()["data"]
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, timeout=30)
    with client:
        answer = client.completions.create(
            model=models[0]["id"], prompt="hello", max_tokens=4, temperature=0
        )
    return answer.choices[0].text


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {key: value for key, _, value in pairs}


def cli(control: ControlProcess, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "INFERPLANE_SERVER": control.url, "INFERPLANE_TOKEN": control.admin_token}
    return [sys.executable, "-m", "inferplane", *args], env


def heartbeat_after(api: api_client.Client, moment: float) -> bool:
    beat = (api.get("Cluster", CLUSTER).get("status") or {}).get("lastHeartbeatTime")
    return bool(beat) and datetime.fromisoformat(beat).timestamp() > moment


@pytest.mark.timeout(420)
def test_an_agent_runs_a_replica_through_crashes_outages_and_deletion(
    control: ControlProcess, api: api_client.Client, make_agent: Any, model_dir: Path
) -> None:
    agent = make_agent()
    agent.start("--keep-engines-on-exit")
    # No controllers run here, so nothing derives the phase: the join shows as a heartbeat.
    wait_for(lambda: _heartbeat_seen(api), timeout=30, what="join")
    cluster = api.get("Cluster", CLUSTER)
    assert cluster["metadata"]["labels"] == {"region": "eu-west", "tier": "prod"}
    assert cluster["spec"]["region"] == "eu-west"
    h100 = api.get("Pool", f"{CLUSTER}-h100")
    assert h100["spec"]["devicesPerNode"][0]["count"] == 4
    assert h100["status"]["readyNodes"] == 1
    assert api.get("Pool", f"{CLUSTER}-cpu")["spec"]["cluster"] == CLUSTER

    # Bound to two of the H100 pool's devices: started, probed, Ready at a URL that serves.
    bind(api, replica("tiny-0", f"file://{model_dir}", pool=f"{CLUSTER}-h100", devices=[1, 3]))
    ready = wait_status(api, "tiny-0", phase="Ready")
    url = ready["url"]
    assert ready["restarts"] == 0 and ready["observedGeneration"] == 1
    token = engine_tokens.engine_token(api, api.get("Replica", "tiny-0"))
    assert complete(url, token)
    first = agent.engine_pid("default/tiny-0")
    assert first is not None
    assert environ_of(first)["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert "INFERPLANE_TOKEN" not in environ_of(first)
    wait_for(lambda: bool(status_of(api, "tiny-0").get("load", {}).get("observedTime")),
             timeout=30, what="a load report")  # fmt: skip
    # Idle and steady, scraped every second: status.load is a summary, not a write per scrape.
    time.sleep(2)
    version = api.get("Replica", "tiny-0")["metadata"]["resourceVersion"]
    time.sleep(4)
    assert api.get("Replica", "tiny-0")["metadata"]["resourceVersion"] == version

    # A source this agent cannot fetch: Failed, saying why.
    bind(api, replica("remote-0", "hf://org/model", pool=f"{CLUSTER}-cpu"))
    failed = wait_status(api, "remote-0", phase="Failed")
    assert "hf:// model sources are not fetched by this agent" in failed["message"]
    api.delete("Replica", "remote-0")
    wait_for(lambda: _gone(api, "remote-0") or _only_release_left(api, "remote-0"), timeout=30)

    # The engine's log, through the control plane.
    command, env = cli(control, "logs", "replica", "tiny-0")
    printed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert "--- inferplane agent: engine start" in printed.stdout
    assert "Uvicorn running on" in printed.stdout

    # kill -9 the engine: the agent restarts it, counts it, and it serves again.
    os.kill(first, signal.SIGKILL)
    wait_status(api, "tiny-0", phase="Ready", restarts=1)
    second = agent.engine_pid("default/tiny-0")
    assert second is not None and second != first
    assert complete(url, token)  # same port again, same token

    # The control plane goes away: the engine keeps serving. It comes back: nothing restarts.
    control.stop()
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    assert complete(url, token)
    time.sleep(2)  # a few heartbeats fail meanwhile
    back = time.time()
    control.start()
    wait_for(lambda: heartbeat_after(api, back), timeout=30, what="a heartbeat after the outage")
    assert agent.engine_pid("default/tiny-0") == second
    assert wait_status(api, "tiny-0", phase="Ready")["restarts"] == 1

    # The agent itself restarts (an upgrade): the new one adopts the running engine.
    assert agent.stop() == 0
    assert complete(url, token)
    agent.start()
    wait_for(lambda: "agent starting" in agent.log().rsplit("agent stopping", 1)[-1], timeout=30)
    time.sleep(3)  # the new agent has synced and reported by now
    assert agent.engine_pid("default/tiny-0") == second
    assert processes.is_running(second, None)
    assert status_of(api, "tiny-0")["restarts"] == 1

    # Following the log, then deleting the replica: drained, finalizer removed, process gone.
    command, env = cli(control, "logs", "replica", "tiny-0", "-f", "--tail", "1")
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=up_process.ignore_sigint
    ) as follower:
        lines = _collect(follower)
        wait_for(lambda: len(lines) == 1, timeout=60, what="the last line of the log")
        api.delete("Replica", "tiny-0")
        wait_for(lambda: _only_release_left(api, "tiny-0"), timeout=60, what="the finalizer")
        assert not processes.is_running(second, None)
        # What the engine logged while draining reached the follower.
        wait_for(lambda: any("Finished server process" in line for line in lines), timeout=30)
        follower.send_signal(signal.SIGINT)

    # Engines stop with an agent that exits (without --keep-engines-on-exit).
    bind(api, replica("tiny-1", f"file://{model_dir}", pool=f"{CLUSTER}-cpu"))
    wait_status(api, "tiny-1", phase="Ready")
    third = agent.engine_pid("default/tiny-1")
    assert third is not None and environ_of(third)["CUDA_VISIBLE_DEVICES"] == ""
    assert agent.stop() == 0
    assert not processes.is_running(third, None)


def _collect(process: subprocess.Popen[str]) -> list[str]:
    """Lines of the process's stdout as they come, gathered by a thread."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _heartbeat_seen(api: api_client.Client) -> bool:
    try:
        return heartbeat_after(api, 0)
    except api_client.NotFound:
        return False


def _phase(api: api_client.Client, kind: str, name: str) -> str | None:
    try:
        phase: str | None = (api.get(kind, name).get("status") or {}).get("phase")
    except api_client.NotFound:
        return None
    return phase


def _gone(api: api_client.Client, name: str) -> bool:
    try:
        api.get("Replica", name)
    except api_client.NotFound:
        return True
    return False


def _only_release_left(api: api_client.Client, name: str) -> bool:
    try:
        meta = api.get("Replica", name)["metadata"]
    except api_client.NotFound:
        return False
    return meta.get("finalizers") == ["inferplane.dev/release-devices"]


def test_log_access_is_checked(control: ControlProcess, api: api_client.Client) -> None:
    bind(api, replica("quiet-0", "file:///nowhere", pool=f"{CLUSTER}-cpu"))
    keys = {}
    for name, namespace in (("viewer", "default"), ("outsider", "other")):
        made = api.create(manifests.apikey(name, namespace, "viewer"))
        keys[name] = made["status"]["token"]
    time.sleep(0.5)  # the control plane learns new keys from its watch
    log = manifests.path("replicas", "default", "quiet-0", "log")
    with control.http(keys["outsider"]) as http:
        assert http.get(log).status_code == 403
    with control.http(keys["viewer"]) as http:
        assert http.get(manifests.path("replicas", "default", "nobody", "log")).status_code == 404
        assert http.post(log, params={"session": "x"}, content=b"hi").status_code == 403
        polled = http.get(f"{manifests.API}/agents/{CLUSTER}/log-requests")
        assert polled.status_code == 403
    with control.http() as http:
        assert http.post(log, params={"session": "x"}, content=b"hi").status_code == 404
        unbound = replica("unbound-0", "file:///nowhere", pool=f"{CLUSTER}-cpu")
        del unbound["spec"]["cluster"], unbound["spec"]["pool"]
        api.create(unbound)
        answer = http.get(manifests.path("replicas", "default", "unbound-0", "log"))
        assert answer.status_code == 400
        assert "not bound to a cluster" in answer.json()["message"]
