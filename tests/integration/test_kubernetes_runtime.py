"""The kubernetes runtime against a fake API server (tests/support/fake_kube.py) through the
official client: it creates a replica's objects, reads its phase from the watch as the test
plays the kubelet, stops it through finalizers, is adopted by a new instance, and keeps
watching after a 410 Gone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferplane.agent import recipes
from inferplane.agent.runtime import base, kubernetes, registry
from inferplane.agent.runtime.kubernetes import api, names
from inferplane.agent.runtime.kubernetes import runtime as kube_runtime
from inferplane.api import fleet, replicas
from tests.support import fake_kube
from tests.unit.agent.samples import bound_spec

NS = "inferplane"
TOKEN = "engine-token-1"
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}


def eventually(check: Callable[[], Any], *, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {check}")
        time.sleep(0.02)


@pytest.fixture
def fake() -> Iterator[fake_kube.FakeKube]:
    with fake_kube.FakeKube() as server:
        capacity = {"cpu": "96", "memory": "1000Gi", "nvidia.com/gpu": "8", "pods": "110"}
        server.create(
            fake_kube.BY_KIND["Node"], "",
            {"metadata": {"name": "h0", "labels": H100},
             "status": {"capacity": capacity, "allocatable": capacity}},
        )  # fmt: skip
        yield server


@pytest.fixture
def connect(fake: fake_kube.FakeKube, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    made: list[kube_runtime.KubernetesRuntime] = []
    config = str(fake.kubeconfig(tmp_path / "kubeconfig"))

    def make(clock: Callable[[], float] = time.monotonic, **settings: Any) -> Any:
        runtime = kube_runtime.KubernetesRuntime(
            api.Api.connect(kubeconfig=config),
            fleet.KubernetesRuntimeSpec.model_validate(settings),
            watch_seconds=2.0,
            sync_timeout=5.0,
            clock=clock,
        )
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close(grace=0, stop_engines=False)


def launch(runtime: kube_runtime.KubernetesRuntime, name: str = "team/chat-0",
           **fields: Any) -> base.Launch:  # fmt: skip
    fields = {"engine": {"image": "example.com/engine:1"},
              "resources": {"devices": [{"name": "gpu", "count": 2}]}, **fields}  # fmt: skip
    spec = bound_spec(pool="eu-1-gpu-h100-8", **fields)
    replica = base.Replica(name, replicas.ReplicaSpec.model_validate(spec))
    made = runtime.launch_for(replica)
    return recipes.recipe_of(replica.spec.engine).with_api_key(made, TOKEN)


def phase(runtime: kube_runtime.KubernetesRuntime, name: str = "team/chat-0") -> str | None:
    runtime.sync()
    found = runtime.status(name)
    return found.phase if found is not None else None


def log_of(runtime: kube_runtime.KubernetesRuntime, name: str) -> bytes | None:
    """The whole log, or None while the runtime knows no pod of `name`."""
    try:
        return runtime.read_log(name, offset=0, limit=1 << 20).data
    except base.UnknownEngine:
        return None


def deployment(fake: fake_kube.FakeKube, name: str = "team/chat-0") -> dict[str, Any]:
    return fake.get(fake_kube.BY_KIND["Deployment"], NS, names.object_name(name))


def test_a_started_replica_turns_ready_with_its_service_url(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    runtime = connect()
    assert runtime.version() == f"Kubernetes {fake_kube.VERSION}"
    assert runtime.adopt() == []
    made = launch(runtime)
    runtime.start(made)
    name = names.object_name("team/chat-0")
    for kind in ("Deployment", "Service", "Secret"):
        assert fake.get(fake_kube.BY_KIND[kind], NS, name)["metadata"]["namespace"] == NS
    template = deployment(fake)["spec"]["template"]["spec"]
    assert template["nodeSelector"] == H100  # the pool's nodes, from the watched Nodes
    assert phase(runtime) == "Starting"
    [pod] = fake.schedule(NS, name)
    assert phase(runtime) == "Starting"
    fake.set_ready(NS, pod)
    assert eventually(lambda: phase(runtime) == "Ready")
    status = runtime.status("team/chat-0")
    assert status is not None
    assert status.url == f"http://{name}.{NS}.svc:8000"
    assert status.fingerprint == made.fingerprint() and status.restarts == 0
    assert runtime.names() == ["team/chat-0"]


def test_a_crashing_engine_shows_crash_loop_back_off_with_its_last_words(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    runtime = connect()
    runtime.adopt()
    runtime.start(launch(runtime))
    [pod] = fake.schedule(NS, names.object_name("team/chat-0"))
    fake.crash(NS, pod, restarts=3, message="loading weights\nCUDA out of memory\n")
    assert eventually(lambda: phase(runtime) == "CrashLoopBackOff")
    status = runtime.status("team/chat-0")
    assert status is not None and status.restarts == 3
    assert status.message == "back-off restarting failed engine: CUDA out of memory"


def test_stop_drains_until_the_finalizers_let_go(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    runtime = connect()
    runtime.adopt()
    runtime.start(launch(runtime))
    name = names.object_name("team/chat-0")
    [pod] = fake.schedule(NS, name)
    fake.set_ready(NS, pod)
    eventually(lambda: phase(runtime) == "Ready")
    fake.patch(fake_kube.BY_KIND["Deployment"], NS, name,
               {"metadata": {"finalizers": ["example.com/hold"]}})  # fmt: skip
    runtime.stop("team/chat-0", grace=7)
    deletes = [r for r in fake.requests if r.method == "DELETE" and "/deployments/" in r.path]
    assert deletes[-1].body is not None
    assert deletes[-1].body["propagationPolicy"] == "Foreground"
    assert deletes[-1].body["gracePeriodSeconds"] == 7
    terminating = fake.get(fake_kube.BY_KIND["Pod"], NS, pod)["metadata"]
    assert terminating["deletionGracePeriodSeconds"] == 7  # the engine's time to drain
    assert phase(runtime) == "Draining"
    fake.terminate(NS, pod)  # the kubelet: the engine has exited
    assert not fake.pods(NS)
    time.sleep(0.2)
    assert phase(runtime) == "Draining"  # the finalizer holds the Deployment
    assert deployment(fake)["metadata"]["deletionTimestamp"]
    fake.patch(fake_kube.BY_KIND["Deployment"], NS, name, {"metadata": {"finalizers": []}})
    assert eventually(lambda: phase(runtime) is None)
    assert runtime.names() == []
    for kind in ("Deployment", "Service", "Secret"):
        with pytest.raises(fake_kube.Failure):
            fake.get(fake_kube.BY_KIND[kind], NS, name)


def test_a_new_runtime_adopts_what_the_last_one_left(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    first = connect()
    first.adopt()
    made = launch(first)
    first.start(made)
    [pod] = fake.schedule(NS, names.object_name("team/chat-0"))
    fake.set_ready(NS, pod)
    first.close(grace=0, stop_engines=False)
    second = connect()
    assert second.adopt() == ["team/chat-0"]
    assert phase(second) == "Ready"
    again = launch(second)
    assert again.fingerprint() == made.fingerprint()
    second.start(again)  # the same launch: kept, its token handed over
    with pytest.raises(base.RuntimeFailure, match="another launch"):
        second.start(launch(second, engine={"image": "example.com/engine:2"}))


def test_adoption_sweeps_objects_no_workload_owns(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    labels = names.labels("team/gone-0", deployment="gone")
    orphan = {"metadata": {"name": names.object_name("team/gone-0"), "labels": labels},
              "spec": {"ports": [{"port": 8000}]}}  # fmt: skip
    fake.create(fake_kube.BY_KIND["Service"], NS, orphan)
    connect().adopt()
    assert fake.list(fake_kube.BY_KIND["Service"], NS)["items"] == []


def test_the_watch_lists_again_after_410_gone(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    runtime = connect()
    runtime.adopt()
    runtime.start(launch(runtime))
    [pod] = fake.schedule(NS, names.object_name("team/chat-0"))
    pods = next(i for i in runtime.informers if i.watched.kind == api.PODS)
    assert eventually(lambda: phase(runtime) == "Starting") and pods.relists == 1
    fake.expire_watches()  # every open watch ends with 410; the history is gone
    fake.set_ready(NS, pod)
    assert eventually(lambda: phase(runtime) == "Ready")
    assert pods.relists >= 2


def test_a_gang_runs_as_a_leader_worker_set(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    runtime = connect()
    runtime.adopt()
    gang = launch(runtime, nodes=[0, 1], resources={"nodes": 2}, devices=[])
    runtime.start(gang)
    name = names.object_name("team/chat-0")
    pods = fake.schedule(NS, name)
    assert len(pods) == 2
    fake.set_ready(NS, pods[0])
    eventually(lambda: phase(runtime) == "Starting")
    fake.set_ready(NS, pods[1])
    assert eventually(lambda: phase(runtime) == "Ready")
    status = runtime.status("team/chat-0")
    assert status is not None and status.url == f"http://{name}-leader.{NS}.svc:8000"


def test_a_gang_without_the_leader_worker_set_api_is_refused(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    fake.missing.add("LeaderWorkerSet")
    runtime = connect()
    runtime.adopt()
    with pytest.raises(base.RuntimeFailure, match="install LeaderWorkerSet"):
        runtime.start(launch(runtime, nodes=[0, 1], resources={"nodes": 2}, devices=[]))
    assert runtime.status("team/chat-0") is None
    name = names.object_name("team/chat-0")
    with pytest.raises(fake_kube.Failure):  # what it made before the refusal is removed
        fake.get(fake_kube.BY_KIND["Service"], NS, names.leader_service(name))


def test_the_log_is_the_leader_pods_read_from_an_offset(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    runtime = connect()
    runtime.adopt()
    runtime.start(launch(runtime))
    with pytest.raises(base.UnknownEngine):
        runtime.read_log("team/chat-0", offset=0, limit=10)
    [pod] = fake.schedule(NS, names.object_name("team/chat-0"))
    eventually(lambda: log_of(runtime, "team/chat-0") == b"")  # the watch shows the pod
    fake.add_log(NS, pod, "first line\nsecond line\n")
    chunk = runtime.read_log("team/chat-0", offset=6, limit=4)
    assert (chunk.data, chunk.offset, chunk.size) == (b"line", 10, 23)
    assert runtime.read_log("team/chat-0", offset=23, limit=100).data == b""


def test_an_api_server_that_fails_is_tried_again_from_sync(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    now = [0.0]
    runtime = connect(clock=lambda: now[0])
    runtime.adopt()
    fake.failing.append(("POST", 503))
    runtime.start(launch(runtime))  # no error: the replica waits for the API server
    status = runtime.status("team/chat-0")
    assert status is not None and status.phase == "Starting"
    assert status.message.startswith("cannot create its objects yet: 503")
    runtime.sync()  # not yet due
    with pytest.raises(fake_kube.Failure):
        deployment(fake)
    now[0] += kube_runtime.CREATE_RETRY.delay(1)
    runtime.sync()
    assert deployment(fake)["metadata"]["annotations"][names.REPLICA_NAME] == "team/chat-0"
    status = runtime.status("team/chat-0")
    assert status is not None and status.message == ""


def test_an_object_the_api_server_refuses_fails_the_start(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    runtime = connect()
    runtime.adopt()
    fake.failing.append(("POST", 403))
    with pytest.raises(base.RuntimeFailure, match="refused"):
        runtime.start(launch(runtime))
    assert runtime.status("team/chat-0") is None


def test_every_request_is_one_the_agents_rbac_allows(
    fake: fake_kube.FakeKube, connect: Callable[..., kube_runtime.KubernetesRuntime]
) -> None:
    runtime = connect(devices="dra")
    runtime.adopt()
    single = launch(runtime)
    gang = launch(runtime, "team/big-0", nodes=[0, 1], resources={"nodes": 2}, devices=[])
    runtime.start(single)
    runtime.start(single)  # again: its token is stored again
    runtime.start(gang)
    [pod] = fake.schedule(NS, names.object_name("team/chat-0"))
    fake.add_log(NS, pod, "hello\n")
    eventually(lambda: log_of(runtime, "team/chat-0"))
    for name in ("team/chat-0", "team/big-0"):
        runtime.stop(name, grace=1)
    for each in fake.pods(NS):
        fake.terminate(NS, each["metadata"]["name"])
    eventually(lambda: runtime.names() == [] or runtime.sync())
    allowed = _allowed(Path(__file__).parents[2] / "deploy" / "kubernetes" / "agent.yaml")
    used = {_permission(r) for r in fake.requests if r.path != "/version"}
    assert used - allowed == set()
    assert ("resource.k8s.io", "resourceclaims", "create", True) in used


def _permission(request: fake_kube.Request) -> tuple[str, str, str, bool]:
    """(group, resource[/subresource], verb, namespaced), as RBAC names them."""
    route = fake_kube._route(request.path)
    resource = route.resource.plural + (f"/{route.sub}" if route.sub else "")
    if request.method == "GET":
        verb = "get" if route.name else ("watch" if request.query.get("watch") else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[
            request.method
        ]
    return (route.resource.group, resource, verb, route.namespace is not None)


def _allowed(path: Path) -> set[tuple[str, str, str, bool]]:
    allowed = set()
    for doc in yaml.safe_load_all(path.read_text()):
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        namespaced = doc["kind"] == "Role"
        if namespaced:
            assert doc["metadata"]["namespace"] == NS
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        allowed.add((group, resource, verb, namespaced))
    return allowed


def test_the_registry_entries_build_and_discover_from_kubeconfig(
    fake: fake_kube.FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    options = registry.RuntimeOptions(tmp_path, settings={"namespace": "engines"})
    runtime = kubernetes.build(options)
    try:
        assert runtime.kind == "kubernetes"
        assert runtime.adopt() == []
    finally:
        runtime.close(grace=0, stop_engines=False)
    [plan] = kubernetes.discover(options)
    assert plan.name == "gpu-h100-8" and plan.spec["nodeCount"] == 1
    bad = registry.RuntimeOptions(tmp_path, settings={"devices": "magic"})
    with pytest.raises(base.RuntimeFailure, match=r"spec\.kubernetes\.devices"):
        kubernetes.build(bad)
