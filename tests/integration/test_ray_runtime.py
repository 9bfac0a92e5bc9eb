"""The Ray runtime against a real two-node Ray cluster on this machine (tests/support/
ray_cluster.py: its GPUs are fake). Nothing of Ray is faked: placement groups, detached
actors, their engine processes and the probes are real; short backoff and probe periods keep
the file fast. Each test has a Ray namespace of its own, as each agent has.

Most engines are a few lines of Python (`ENGINE`) serving /health; one test runs the
reference engine with the built-in demo model and its per-replica token.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane.agent import recipes
from inferplane.agent.runtime import base, rayruntime, registry
from inferplane.agent.runtime.rayruntime.settings import RaySettings
from inferplane.api import replicas
from inferplane.backoff import Backoff
from tests.support.control import free_port
from tests.support.engine_process import wait_for
from tests.support.ray_cluster import FAKE_GPU, RayCluster, ray_cluster

pytest.importorskip("ray", reason="Ray is not installed: pip install 'ray[default]'")
import ray
import ray.util

from inferplane.agent.runtime.rayruntime import cluster, gangs
from inferplane.agent.runtime.rayruntime import runtime as ray_runtime

pytestmark = pytest.mark.integration
__all__ = ["ray_cluster"]  # the session fixture, used by name

ENGINE = r"""
import http.server, os, signal, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for name in ("CUDA_VISIBLE_DEVICES", "LWS_WORKER_INDEX", "LWS_GROUP_SIZE",
             "INFERPLANE_GANG_LEADER_URL"):
    print(f"{name}={os.environ.get(name, '<unset>')}", flush=True)
print("RAY_VARS=" + ",".join(sorted(k for k in os.environ if k.startswith("RAY_"))), flush=True)
if mode == "crash":
    print("boom: out of fake memory", flush=True)
    sys.exit(3)
def term(signum, frame):
    print("draining", flush=True)
    if mode != "ignore-term":
        os._exit(0)
signal.signal(signal.SIGTERM, term)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
print(f"listening on {host}:{port}", flush=True)
http.server.HTTPServer((host, port), Health).serve_forever()
"""
POOL = f"ray-{FAKE_GPU.lower().replace('-', '')}-1gpu-1cpu-2gi"
"""The pool discovery makes of the fixture's two (identical) nodes."""
_namespaces = itertools.count()
Make = Callable[..., ray_runtime.RayRuntime]


def spec(*, mode: str = "serve", nodes: int = 1, **fields: Any) -> replicas.ReplicaSpec:
    raw: dict[str, Any] = {
        "deployment": "d",
        "model": {"name": "m", "version": "v1", "source": "file:///tmp"},
        "engine": {
            "recipe": "custom",
            "command": [sys.executable, "-c", ENGINE, "{host}", "{port}", mode],
        },
        "resources": {"nodes": nodes},
        "cluster": "ray-1",
        "pool": f"ray-1-{POOL}",
        **fields,
    }
    return replicas.ReplicaSpec.model_validate(raw)


@pytest.fixture
def namespace() -> str:
    return f"inferplane-test-{os.getpid()}-{next(_namespaces)}"


@pytest.fixture
def make_runtime(ray_cluster: RayCluster, tmp_path: Path, namespace: str) -> Iterator[Make]:
    made: list[ray_runtime.RayRuntime] = []

    def make(**fields: Any) -> ray_runtime.RayRuntime:
        settings = RaySettings(
            address=ray_cluster.address,
            namespace=namespace,
            log_dir=tmp_path / "logs",
            backoff=Backoff(base=0.3, cap=2.0),
            probe_period=0.5,
            startup_probe_period=0.2,
            **fields,
        )
        runtime = ray_runtime.RayRuntime(settings)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close(grace=2.0, stop_engines=True)
    cluster.connect(ray_cluster.address, namespace)
    try:
        wait_for(lambda: cluster.actor_names() == [], timeout=10, what="no actor left behind")
    finally:
        cluster.disconnect()


def started(runtime: ray_runtime.RayRuntime, name: str, replica: replicas.ReplicaSpec) -> None:
    runtime.start(runtime.launch_for(base.Replica(name, replica)))


def status(runtime: ray_runtime.RayRuntime, name: str) -> base.EngineStatus:
    found = runtime.status(name)
    assert found is not None, f"{name} is not running"
    return found


def settle(
    runtime: ray_runtime.RayRuntime, until: Callable[[], bool], *, what: str, timeout: float = 30
) -> None:
    def step() -> bool:
        runtime.sync()
        return until()

    wait_for(step, timeout=timeout, what=what)


def ready(runtime: ray_runtime.RayRuntime, name: str, timeout: float = 30) -> base.EngineStatus:
    settle(runtime, lambda: status(runtime, name).phase == "Ready", what=f"{name} Ready",
           timeout=timeout)  # fmt: skip
    return status(runtime, name)


def log_of(runtime: ray_runtime.RayRuntime, name: str) -> str:
    return runtime.read_log(name, offset=0, limit=1 << 20).data.decode()


def member(name: str, index: int) -> Any:
    """The engine actor of gang member `index`, as Ray itself finds it."""
    return ray.get_actor(gangs.actor_name(name, index))


def test_a_replica_is_a_placement_group_on_a_fake_gpu_and_turns_ready(make_runtime: Make) -> None:
    runtime = make_runtime()
    assert runtime.version() == f"Ray {ray.__version__}"
    started(runtime, "ns/a", spec(resources={"devices": [{"name": "gpu", "count": 1}]}))
    assert status(runtime, "ns/a").phase == "Starting"
    engine = ready(runtime, "ns/a")
    assert engine.url is not None
    assert httpx.get(engine.url + "/health").status_code == 200
    log = log_of(runtime, "ns/a").splitlines()
    assert "CUDA_VISIBLE_DEVICES=0" in log, "the GPU Ray gave the actor"
    assert "RAY_VARS=" in log, "none of the Ray worker's own variables"
    assert ray.util.list_named_actors() == ["engine:ns/a:0"]
    group = ray.util.get_placement_group("engine:ns/a")
    assert group.bundle_specs == [{"CPU": 0.01, "GPU": 1.0, f"accelerator_type:{FAKE_GPU}": 0.001}]
    assert ray.util.placement_group_table(group)["strategy"] == "STRICT_PACK"


def test_a_reference_engine_gang_serves_the_demo_model_and_its_token_stays_out_of_ray(
    make_runtime: Make,
) -> None:
    runtime = make_runtime()
    replica = spec(engine={"recipe": "reference", "args": ["--log-level", "warning"]},
                   model={"name": "m", "version": "v1", "source": "file://demo"},
                   resources={"nodes": 2})  # fmt: skip
    token = "engine-token-7f3a9c"
    launch = recipes.recipe_of(replica.engine).with_api_key(
        runtime.launch_for(base.Replica("ns/ref", replica)), token
    )
    runtime.start(launch)
    engine = ready(runtime, "ns/ref", timeout=90)
    assert engine.url is not None
    client = openai.OpenAI(base_url=f"{engine.url}/v1", api_key=token, max_retries=0)
    answer = client.completions.create(model="demo", prompt="Once upon", max_tokens=4)
    assert answer.choices[0].text
    assert httpx.post(f"{engine.url}/v1/completions", json={}).status_code == 401
    actors = repr(ray._private.state.actors())  # the GCS's actor table: names, options
    assert "engine:ns/ref:0" in actors and "engine:ns/ref:1" in actors
    assert token not in actors
    assert token not in log_of(runtime, "ns/ref")
    worker = ray.get(member("ns/ref", 1).describe.remote())
    health = httpx.get(f"http://{worker.node_ip}:{worker.port}/health").json()
    assert (health["member"], health["leader"]) == (1, engine.url), "the worker follows"


def test_a_gang_larger_than_the_cluster_waits_for_nodes_and_stops_at_once(
    make_runtime: Make,
) -> None:
    runtime = make_runtime()
    started(runtime, "ns/huge", spec(nodes=3, resources={"nodes": 3}))
    settle(runtime, lambda: "waiting for Ray" in status(runtime, "ns/huge").message,
           what="the reason it waits")  # fmt: skip
    engine = status(runtime, "ns/huge")
    assert engine.phase == "Starting"
    assert engine.message == (
        "waiting for Ray to place its placement group: STRICT_SPREAD {CPU: 0.01}"
        " over 3 distinct nodes"
    )
    runtime.stop("ns/huge", grace=30.0)
    runtime.sync()
    assert runtime.names() == [], "nothing ran: nothing to drain"


def test_a_crashing_engine_restarts_with_backoff_into_crash_loop_back_off(
    make_runtime: Make,
) -> None:
    runtime = make_runtime()
    started(runtime, "ns/crash", spec(mode="crash"))
    settle(runtime, lambda: status(runtime, "ns/crash").phase == "CrashLoopBackOff",
           what="CrashLoopBackOff")  # fmt: skip
    engine = status(runtime, "ns/crash")
    assert engine.restarts == base.CRASH_LOOP_AFTER - 1
    assert "engine exited with code 3: boom: out of fake memory" in engine.message
    assert engine.message.startswith("back-off")
    settle(runtime, lambda: status(runtime, "ns/crash").restarts >= base.CRASH_LOOP_AFTER,
           what="a restart after the back-off")  # fmt: skip
    assert log_of(runtime, "ns/crash").count("boom: out of fake memory") >= base.CRASH_LOOP_AFTER


def test_stop_drains_with_sigterm_first_and_leaves_no_actor_or_group(make_runtime: Make) -> None:
    runtime = make_runtime()
    started(runtime, "ns/drain", spec())
    started(runtime, "ns/stubborn", spec(mode="ignore-term"))
    ready(runtime, "ns/drain")
    ready(runtime, "ns/stubborn")
    runtime.stop("ns/drain", grace=10.0)
    runtime.stop("ns/stubborn", grace=1.0)
    assert status(runtime, "ns/drain").phase == "Draining"
    settle(runtime, lambda: runtime.names() == [], what="both engines gone")
    assert log_of(runtime, "ns/drain").rstrip().endswith("draining"), "SIGTERM, then it exited"
    assert log_of(runtime, "ns/stubborn").rstrip().endswith("draining"), "SIGKILL after grace"
    assert ray.util.list_named_actors() == []
    for name in ("engine:ns/drain", "engine:ns/stubborn"):
        with pytest.raises(ValueError):
            ray.util.get_placement_group(name)


def test_a_new_runtime_adopts_the_detached_actors_an_agent_left_running(make_runtime: Make) -> None:
    first = make_runtime()
    started(first, "ns/kept", spec())
    url = ready(first, "ns/kept").url
    assert url is not None
    first.close(grace=1.0, stop_engines=False)
    assert httpx.get(url + "/health").status_code == 200, "the engine outlives its agent"
    second = make_runtime()
    assert second.adopt() == ["ns/kept"]
    adopted = ready(second, "ns/kept")
    assert (adopted.url, adopted.restarts) == (url, 0)
    assert log_of(second, "ns/kept").count("engine start") == 1, "adopted, not restarted"


def test_an_adopted_gang_that_lost_a_member_restarts_whole_once_it_has_its_token(
    make_runtime: Make, ray_cluster: RayCluster, namespace: str
) -> None:
    first = make_runtime()
    replica = spec(nodes=2, resources={"nodes": 2})
    built = first.launch_for(base.Replica("ns/tok", replica))
    launch = dataclasses.replace(built, env={**built.env, "ENGINE_TOKEN": base.TOKEN}, token="t0k")
    first.start(launch)
    ready(first, "ns/tok")
    first.close(grace=1.0, stop_engines=False)
    cluster.connect(ray_cluster.address, namespace)  # the test's own look, as no agent watches
    os.kill(ray.get(member("ns/tok", 1).poll.remote()).pid, signal.SIGKILL)
    second = make_runtime()
    assert second.adopt() == ["ns/tok"]
    settle(second, lambda: status(second, "ns/tok").message == ray_runtime.WAITING_FOR_TOKEN,
           what="the restart waiting for the token")  # fmt: skip
    second.start(launch)  # the agent hands the token over with the same launch
    assert ready(second, "ns/tok").restarts == 1


def test_discovery_sees_both_nodes_as_one_pool(ray_cluster: RayCluster, tmp_path: Path) -> None:
    options = registry.RuntimeOptions(tmp_path, settings={"address": ray_cluster.address})
    (pool,) = rayruntime.discover(options)
    assert pool.name == POOL
    assert pool.spec["nodeCount"] == 2
    assert pool.spec["devicesPerNode"][0]["count"] == 1
    assert pool.spec["devicesPerNode"][0]["attributes"]["rayAcceleratorType"] == FAKE_GPU


def test_a_gang_spreads_over_both_nodes_and_restarts_whole_when_a_member_dies(
    make_runtime: Make,
) -> None:
    runtime = make_runtime()
    started(runtime, "ns/gang", spec(nodes=2, resources={"nodes": 2, "cpu": "500m"}))
    engine = ready(runtime, "ns/gang")
    group = ray.util.get_placement_group("engine:ns/gang")
    assert ray.util.placement_group_table(group)["strategy"] == "STRICT_SPREAD"
    leader, worker = (ray.get(member("ns/gang", i).describe.remote()) for i in (0, 1))
    assert leader.node_id != worker.node_id, "one member per node"
    logs = [log_of(runtime, "ns/gang"), _member_log(runtime, "ns/gang", 1)]
    assert "LWS_WORKER_INDEX=0" in logs[0] and "LWS_WORKER_INDEX=1" in logs[1]
    assert f"INFERPLANE_GANG_LEADER_URL={engine.url}" in logs[1]
    worker_pid = ray.get(member("ns/gang", 1).poll.remote()).pid
    os.kill(worker_pid, signal.SIGKILL)
    settle(runtime, lambda: status(runtime, "ns/gang").restarts == 1, what="the gang restarted")
    ready(runtime, "ns/gang")
    generations = {ray.get(member("ns/gang", i).poll.remote()).generation for i in (0, 1)}
    assert generations == {2}, "both members restarted together"
    assert log_of(runtime, "ns/gang").count("engine start") == 2, "the leader restarted too"


def test_a_dead_actor_is_recreated_and_its_engine_restarted(make_runtime: Make) -> None:
    runtime = make_runtime()
    started(runtime, "ns/lost", spec())
    ready(runtime, "ns/lost")
    ray.kill(member("ns/lost", 0), no_restart=True)
    settle(runtime, lambda: status(runtime, "ns/lost").phase != "Ready", what="actor loss seen")
    assert "the Ray actor of member 0 is gone" in status(runtime, "ns/lost").message
    assert ready(runtime, "ns/lost").restarts == 1


def test_an_address_nothing_answers_at_is_refused_at_once(tmp_path: Path) -> None:
    nowhere = RaySettings(address=f"127.0.0.1:{free_port()}", namespace="n", log_dir=tmp_path)
    with pytest.raises(cluster.RayUnavailable, match=r"no Ray cluster answers at 127\.0\.0\.1:"):
        ray_runtime.RayRuntime(nowhere).adopt()


def _member_log(runtime: ray_runtime.RayRuntime, name: str, index: int) -> str:
    return (runtime.settings.log_dir / f"{name.replace('/', '_')}.member-{index}.log").read_text()
