"""The slurm runtime against a real Slurm: munged, slurmctld and three slurmd on loopback
(tests/support/slurm.py; its GPUs are FAKE, /dev/null device files). Nothing of Slurm is
faked: every job is submitted with sbatch, scheduled by slurmctld, run by slurmd under srun.

Time is real (Slurm's is): the runtime polls squeue every 0.25 s and backs off 0.5 s, so each
test takes a few seconds. Engines are the reference engine with the built-in demo model, or
a small Python HTTP server (ENGINE) that also records each member's argv and environment.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferplane.agent import recipes
from inferplane.agent.runtime import base, slurm
from inferplane.agent.runtime.registry import RuntimeOptions
from inferplane.agent.runtime.slurm import commands, runtime
from inferplane.api import fleet, replicas
from inferplane.backoff import Backoff
from tests.support.slurm import SlurmCluster, slurm_cluster  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration

TOKEN = "tok-3c9a1f0e55d2"
ENGINE = r"""
import http.server, json, os, signal, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
index = os.environ.get("LWS_WORKER_INDEX", "0")
path = os.path.join(out, f"member-{os.environ['SLURM_JOB_ID']}-{index}.json")
with open(path + ".tmp", "w") as file:
    json.dump({"pid": os.getpid(), "argv": sys.argv[3:], "env": dict(os.environ)}, file)
os.replace(path + ".tmp", path)

def drain(*_):
    print(f"member {index} draining", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, drain)
print(f"member {index} up on {port}", flush=True)
if index != "0":
    while True:
        time.sleep(1)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""

Make = Callable[..., runtime.SlurmRuntime]


@pytest.fixture
def make_runtime(slurm_cluster: SlurmCluster, tmp_path: Path) -> Iterator[Make]:  # noqa: F811
    def make(data_dir: Path | None = None, **settings: Any) -> runtime.SlurmRuntime:
        fields: dict[str, Any] = {
            "bind_host": "127.0.0.1",
            "backoff": Backoff(base=0.5, cap=2.0),
            "poll_period": 0.25,
            "probe_period": 0.5,
            "startup_probe_period": 0.2,
            **settings,
        }
        config = runtime.SlurmSettings(data_dir or tmp_path / "agent", **fields)
        return runtime.SlurmRuntime(config, slurm=commands.Commands(env=slurm_cluster.env))

    yield make
    slurm_cluster.cancel_all()  # whatever a failed test left


def replica(name: str, source: str = "file://demo", **fields: Any) -> base.Replica:
    """A bound replica; a custom engine's model is any folder (it reads none)."""
    spec = {
        "deployment": "chat",
        "model": {"name": "m", "version": "v1", "source": source},
        "cluster": "hpc",
        "pool": "hpc-gpu-fake",
        **fields,
    }
    return base.Replica(name, replicas.ReplicaSpec.model_validate(spec))


def custom(tmp_path: Path, *extra: str, **engine: Any) -> dict[str, Any]:
    """The engine spec of ENGINE, recording its members into tmp_path/out."""
    script = tmp_path / "engine.py"
    script.write_text(ENGINE)
    (tmp_path / "out").mkdir(exist_ok=True)
    command = [sys.executable, str(script), "{port}", str(tmp_path / "out"), *extra]
    return {"recipe": "custom", "command": command, **engine}


def settle(
    made: runtime.SlurmRuntime, until: Callable[[], bool], *, timeout: float = 40.0, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        made.sync()
        if until():
            return
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def status(made: runtime.SlurmRuntime, name: str) -> base.EngineStatus:
    found = made.status(name)
    assert found is not None
    return found


def phase(made: runtime.SlurmRuntime, name: str) -> str | None:
    found = made.status(name)
    return found.phase if found is not None else None


def members(tmp_path: Path, job_id: str) -> dict[int, dict[str, Any]]:
    found = {}
    for path in (tmp_path / "out").glob(f"member-{job_id}-*.json"):
        found[int(path.stem.rsplit("-", 1)[1])] = json.loads(path.read_text())
    return found


def final_state(cluster: SlurmCluster, job_id: str) -> str:
    return cluster.run("squeue", "--states=all", "--noheader", "-O", "State", "-j", job_id).strip()


# --- tests ---------------------------------------------------------------------------------


def test_the_reference_engine_runs_as_a_job_and_serves_the_demo_model(
    make_runtime: Make,
    slurm_cluster: SlurmCluster,  # noqa: F811
) -> None:
    made = make_runtime()
    resources = {"devices": [{"count": 1}], "cpu": "1", "memory": "512Mi"}
    chat = replica("ns/chat", engine={"recipe": "reference"}, resources=resources)
    launch = recipes.RECIPES["reference"].with_api_key(made.launch_for(chat), TOKEN)
    made.start(launch)
    assert phase(made, "ns/chat") == "Starting"
    settle(made, lambda: phase(made, "ns/chat") == "Ready", what="the engine to turn Ready")
    ready = status(made, "ns/chat")
    assert ready.url is not None and ready.url.startswith("http://127.0.0.1:")
    assert ready.restarts == 0 and ready.message == ""
    models = httpx.get(f"{ready.url}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"})
    assert models.status_code == 200 and models.json()["data"]
    assert httpx.get(f"{ready.url}/v1/models").status_code == 401  # the token is required

    job_id = made.job_id("ns/chat")
    assert job_id is not None
    shown = slurm_cluster.show_job(job_id)
    assert "JobName=inferplane-ns-chat" in shown and "replica=ns/chat" in shown
    assert "gres:gpu:1" in shown and "MinMemoryNode=512M" in shown  # FAKE GPUs, but asked for
    stored = slurm_cluster.run("scontrol", "write", "batch_script", job_id, "-")
    for text in (shown, stored, made.files("ns/chat").script.read_text()):
        assert TOKEN not in text
    token_file = made.files("ns/chat").token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    log = made.read_log("ns/chat", offset=0, limit=1 << 20).data.decode()
    assert "--- inferplane agent: engine start at" in log and "Uvicorn running" in log

    made.close(grace=20.0, stop_engines=True)
    assert slurm_cluster.job_ids() == []
    assert not token_file.exists()  # gone with the job


def test_stop_drains_the_engine_with_sigterm_then_the_job_is_gone(
    make_runtime: Make,
    slurm_cluster: SlurmCluster,  # noqa: F811
) -> None:
    made = make_runtime()
    made.start(made.launch_for(replica("ns/drain", engine={"recipe": "reference"})))
    settle(made, lambda: phase(made, "ns/drain") == "Ready", what="the engine to turn Ready")
    job_id = made.job_id("ns/drain")
    assert job_id is not None
    begun = time.monotonic()
    made.stop("ns/drain", grace=30.0)
    assert phase(made, "ns/drain") == "Draining"
    settle(made, lambda: made.status("ns/drain") is None, what="the job to end")
    assert time.monotonic() - begun < 30.0  # it drained: nothing waited for the grace
    log = made.files("ns/drain").log.read_text()
    assert "Shutting down" in log and "Finished server process" in log  # uvicorn's drain
    assert final_state(slurm_cluster, job_id) == "COMPLETED"  # exit 0: not killed
    assert made.names() == []


def test_an_engine_that_exits_is_resubmitted_into_crash_loop_back_off(
    make_runtime: Make, tmp_path: Path
) -> None:
    made = make_runtime()
    exits = [sys.executable, "-c", "print('boom 3', flush=True); raise SystemExit(3)", "{port}"]
    engine = {"recipe": "custom", "command": exits}
    made.start(made.launch_for(replica("ns/crash", f"file://{tmp_path}", engine=engine)))
    seen: set[str] = set()

    def crash_looping() -> bool:
        job_id = made.job_id("ns/crash")
        if job_id is not None:
            seen.add(job_id)
        return phase(made, "ns/crash") == "CrashLoopBackOff"

    settle(made, crash_looping, what="CrashLoopBackOff")
    looping = status(made, "ns/crash")
    assert looping.restarts == base.CRASH_LOOP_AFTER - 1 and len(seen) == base.CRASH_LOOP_AFTER
    assert "restarting failed engine: Slurm job" in looping.message
    assert looping.message.endswith("FAILED (exit code 3): boom 3")
    settle(made, lambda: made.job_id("ns/crash") is not None, what="the next submission")
    made.close(grace=5.0, stop_engines=True)


def test_an_engine_not_healthy_within_its_startup_timeout_is_cancelled_and_resubmitted(
    make_runtime: Make,
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    made = make_runtime()
    silent = [sys.executable, "-c", "import time; time.sleep(60)", "{port}"]
    engine = {"recipe": "custom", "command": silent, "startupTimeoutSeconds": 1}
    made.start(made.launch_for(replica("ns/silent", f"file://{tmp_path}", engine=engine)))
    settle(made, lambda: made.job_id("ns/silent") is not None, what="the submission")
    job_id = made.job_id("ns/silent")
    assert job_id is not None
    settle(made, lambda: made.job_id("ns/silent") != job_id, what="the cancel")
    message = status(made, "ns/silent").message
    assert message == "not healthy within its startup timeout of 1s"
    assert final_state(slurm_cluster, job_id) == "CANCELLED"
    made.close(grace=5.0, stop_engines=True)


def test_a_new_runtime_adopts_the_running_job_and_hostile_values_arrive_verbatim(
    make_runtime: Make,
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INFERPLANE_TOKEN", "the-agents-own")  # sbatch's environment: never
    hostile = ["$(touch pwned)", "a'; touch pwned; '", "x\n#SBATCH --partition=evil\n"]
    env = {"EVIL": "`touch pwned`\n#SBATCH --nodes=3", "PLAIN": "value with spaces"}
    engine = custom(tmp_path, *hostile[:1], args=hostile[1:], env=env)
    gpus = {"devices": [{"count": 2}]}
    first = make_runtime()
    adopt = replica("ns/adopt", f"file://{tmp_path}", engine=engine, resources=gpus)
    first.start(first.launch_for(adopt))
    settle(first, lambda: phase(first, "ns/adopt") == "Ready", what="the engine to turn Ready")
    job_id = first.job_id("ns/adopt")
    assert job_id is not None
    recorded = members(tmp_path, job_id)[0]
    assert recorded["argv"] == hostile
    assert {key: recorded["env"][key] for key in env} == env
    assert recorded["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"  # Slurm's (FAKE) GPUs, bound by it
    assert "INFERPLANE_TOKEN" not in recorded["env"]
    assert not list(tmp_path.rglob("pwned"))  # the data dir, the jobs' cwd, is in tmp_path

    first.close(grace=5.0, stop_engines=False)  # the agent exits, the job goes on
    assert slurm_cluster.job_ids() == [job_id]
    second = make_runtime()
    assert second.adopt() == ["ns/adopt"]
    assert second.job_id("ns/adopt") == job_id
    settle(second, lambda: phase(second, "ns/adopt") == "Ready", what="the adopted engine")
    assert status(second, "ns/adopt").restarts == 0
    second.close(grace=10.0, stop_engines=True)
    assert slurm_cluster.job_ids() == []
    assert "member 0 draining" in second.files("ns/adopt").log.read_text()


def test_discover_reports_one_pool_per_node_shape(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    options = RuntimeOptions(tmp_path, settings={"partition": slurm_cluster.partition})
    found = {plan.name: plan.spec for plan in slurm.discover(options)}
    assert found == {
        "cpu": {"nodeCount": 1, "cpu": "1", "memory": "1000Mi"},
        "gpu-fake": {
            "nodeCount": 2,
            "cpu": "2",
            "memory": "2000Mi",
            "devicesPerNode": [
                {
                    "name": "gpu",
                    "count": 2,
                    "driver": "gpu.nvidia.com",
                    "capacity": {},
                    "attributes": {"type": "gpu", "productName": "FAKE", "slurmGresType": "fake"},
                },
            ],
        },
    }
    for spec in found.values():
        fleet.PoolSpec.model_validate({**spec, "cluster": "hpc"})
    version = slurm.build(options).version()
    assert version is not None and version.startswith("Slurm ")


def test_a_job_slurm_requeues_is_followed_as_the_same_job(
    make_runtime: Make,
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    made = make_runtime()
    engine = custom(tmp_path)
    made.start(made.launch_for(replica("ns/requeue", f"file://{tmp_path}", engine=engine)))
    settle(made, lambda: phase(made, "ns/requeue") == "Ready", what="the engine to turn Ready")
    job_id = made.job_id("ns/requeue")
    assert job_id is not None
    # What Slurm does on a node failure (--requeue), by hand; released at once, not in 2 min.
    slurm_cluster.run("scontrol", "requeue", job_id)
    settle(made, lambda: phase(made, "ns/requeue") == "Starting", what="the requeue")
    released = [0.0]

    def ready_again() -> bool:
        # Slurm holds a requeued job (BeginTime) once it is pending again, which under load
        # may be after a first release: release it until it runs.
        if phase(made, "ns/requeue") == "Ready":
            return True
        if time.monotonic() - released[0] >= 1.0:
            released[0] = time.monotonic()
            slurm_cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now", check=False)
        return False

    settle(made, ready_again, timeout=90.0, what="the requeued run")
    assert made.job_id("ns/requeue") == job_id
    assert status(made, "ns/requeue").restarts == 1
    made.close(grace=10.0, stop_engines=True)


def test_a_job_cancelled_outside_the_agent_is_submitted_again(
    make_runtime: Make,
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    made = make_runtime()
    engine = custom(tmp_path)
    made.start(made.launch_for(replica("ns/cancelled", f"file://{tmp_path}", engine=engine)))
    settle(made, lambda: phase(made, "ns/cancelled") == "Ready", what="the engine to turn Ready")
    job_id = made.job_id("ns/cancelled")
    assert job_id is not None
    slurm_cluster.run("scancel", job_id)  # an operator, not the agent
    settle(made, lambda: made.job_id("ns/cancelled") is None, what="the end of the job")
    ended = status(made, "ns/cancelled")
    assert ended.phase == "Starting" and ended.message.startswith(
        f"Slurm job {job_id} CANCELLED (not by this agent): "
    )
    settle(made, lambda: phase(made, "ns/cancelled") == "Ready", what="the job submitted again")
    assert made.job_id("ns/cancelled") != job_id and status(made, "ns/cancelled").restarts == 1
    made.close(grace=10.0, stop_engines=True)


def test_a_gang_is_one_job_whose_members_restart_together(
    make_runtime: Make,
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    made = make_runtime()
    engine = custom(tmp_path)
    gang = replica("ns/gang", f"file://{tmp_path}", engine=engine, resources={"nodes": 2})
    launch = made.launch_for(gang)
    made.start(launch)
    settle(made, lambda: phase(made, "ns/gang") == "Ready", what="the gang to turn Ready")
    job_id = made.job_id("ns/gang")
    assert job_id is not None and slurm_cluster.job_ids() == [job_id]
    assert "NumNodes=2" in slurm_cluster.show_job(job_id)
    url = status(made, "ns/gang").url
    assert url is not None
    port = int(url.rsplit(":", 1)[1])
    settle(made, lambda: len(members(tmp_path, job_id)) == 2, what="both members")
    found = members(tmp_path, job_id)
    for index in (0, 1):
        expected = launch.member_env(index, leader_host="127.0.0.1", leader_port=port)
        assert {key: found[index]["env"][key] for key in expected} == expected
    assert found[0]["env"]["SLURMD_NODENAME"] != found[1]["env"]["SLURMD_NODENAME"]

    os.kill(found[1]["pid"], signal.SIGKILL)  # one member lost: the whole gang goes
    settle(made, lambda: made.job_id("ns/gang") not in (job_id, None), what="a new job")
    settle(made, lambda: phase(made, "ns/gang") == "Ready", what="the gang back")
    again = status(made, "ns/gang")
    assert again.restarts == 1
    assert final_state(slurm_cluster, job_id) == "FAILED"
    made.close(grace=10.0, stop_engines=True)
