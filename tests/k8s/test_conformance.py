"""The kubernetes runtime against a real cluster (see conftest.py): the API server admits
every object render makes, a replica turns Ready and is reachable by its Service's name from
the cluster's DNS, a crashing one shows CrashLoopBackOff with its last words, a stopped one
goes, another runtime adopts one, and the Nodes make valid pools."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from inferplane.agent import discovery as host_discovery
from inferplane.agent.runtime import base
from inferplane.agent.runtime.kubernetes import api, discovery, render
from inferplane.agent.runtime.kubernetes import runtime as kube_runtime
from inferplane.api import fleet, replicas
from tests.k8s.conftest import IMAGE, NAMESPACE

READY_SECONDS = 240.0
Make = Callable[[], kube_runtime.KubernetesRuntime]


def replica(name: str, command: list[str], **fields: Any) -> base.Replica:
    """A custom engine in the test image; no model, no devices."""
    spec = {
        "deployment": "conformance",
        "model": {"name": "m", "version": "v1", "source": "file:///models/none"},
        "engine": {"recipe": "custom", "image": IMAGE, "command": command, "port": 8000,
                   "healthPath": "/", "startupTimeoutSeconds": 120},
        "resources": {"cpu": "100m", "memory": "64Mi"},
        "cluster": "conformance",
        "pool": "conformance-none",
        **fields,
    }  # fmt: skip
    return base.Replica(name, replicas.ReplicaSpec.model_validate(spec))


SERVER = ["python3", "-m", "http.server", "{port}", "--directory", "/tmp"]


def until(check: Callable[[], Any], *, timeout: float = READY_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"not within {timeout:.0f}s")


def phase(runtime: kube_runtime.KubernetesRuntime, name: str) -> str | None:
    runtime.sync()
    status = runtime.status(name)
    return status.phase if status else None


def test_the_api_server_admits_every_rendered_object(
    client: api.Api, make_runtime: Make, replica_name: str, settings: fleet.KubernetesRuntimeSpec
) -> None:
    runtime = make_runtime()
    runtime.adopt()
    launch = runtime.launch_for(replica(replica_name, SERVER))
    _admitted(client, render.render(launch, settings, token="t").all())


def _admitted(client: api.Api, manifests: list[dict[str, Any]]) -> None:
    """Each manifest, dry-run created: the server answers with the object as it would store
    it (a refusal raises), the same kind and name as sent."""
    assert manifests
    for manifest in manifests:
        admitted = client.create(NAMESPACE, manifest, dry_run=True)
        assert admitted["kind"] == manifest["kind"], admitted
        assert admitted["metadata"]["name"] == manifest["metadata"]["name"], admitted


def test_a_gang_is_admitted_where_leader_worker_set_is_installed(
    client: api.Api, make_runtime: Make, replica_name: str, settings: fleet.KubernetesRuntimeSpec
) -> None:
    try:
        client.list(api.LEADER_WORKER_SETS, NAMESPACE)
    except api.NotFound:
        pytest.skip("LeaderWorkerSet is not installed on this cluster")
    runtime = make_runtime()
    runtime.adopt()
    launch = runtime.launch_for(replica(replica_name, SERVER, nodes=[0, 1],
                                        resources={"nodes": 2}))  # fmt: skip
    manifests = render.render(launch, settings).all()
    assert any(m["kind"] == "LeaderWorkerSet" for m in manifests)
    _admitted(client, manifests)


def test_a_dra_claim_is_admitted_where_resource_v1_is_served(
    client: api.Api, make_runtime: Make, replica_name: str
) -> None:
    try:
        client.list(api.RESOURCE_CLAIMS, NAMESPACE)
    except api.NotFound:
        pytest.skip("resource.k8s.io/v1 is not served by this cluster")
    settings = fleet.KubernetesRuntimeSpec(namespace=NAMESPACE, devices="dra")
    runtime = make_runtime()
    runtime.adopt()
    rep = replica(replica_name, SERVER, resources={"devices": [{"name": "gpu", "count": 1,
                  "selectors": ['device.driver == "gpu.nvidia.com"']}]})  # fmt: skip
    claim = render.render(runtime.launch_for(rep), settings).claim
    assert claim is not None
    _admitted(client, [claim])


def test_a_replica_turns_ready_stops_and_goes(make_runtime: Make, replica_name: str) -> None:
    runtime = make_runtime()
    runtime.adopt()
    runtime.start(runtime.launch_for(replica(replica_name, SERVER)))
    assert until(lambda: phase(runtime, replica_name) == "Ready")
    status = runtime.status(replica_name)
    assert status is not None and status.url and status.url.endswith(".svc:8000")
    assert until(lambda: runtime.read_log(replica_name, offset=0, limit=4096).size, timeout=60)
    runtime.stop(replica_name, grace=5)
    assert phase(runtime, replica_name) == "Draining"
    assert until(lambda: phase(runtime, replica_name) is None)


def test_a_crashing_engine_shows_crash_loop_back_off(make_runtime: Make, replica_name: str) -> None:
    runtime = make_runtime()
    runtime.adopt()
    command = ["python3", "-c", "print('engine gave up: {port}'); raise SystemExit(3)"]
    runtime.start(runtime.launch_for(replica(replica_name, command)))
    assert until(lambda: phase(runtime, replica_name) == "CrashLoopBackOff")
    status = runtime.status(replica_name)
    assert status is not None and "engine gave up" in status.message


def test_another_runtime_adopts_a_running_replica(make_runtime: Make, replica_name: str) -> None:
    first = make_runtime()
    first.adopt()
    launch = first.launch_for(replica(replica_name, SERVER))
    first.start(launch)
    until(lambda: phase(first, replica_name) == "Ready")
    first.close(grace=0, stop_engines=False)
    second = make_runtime()
    assert replica_name in second.adopt()
    assert phase(second, replica_name) == "Ready"
    second.start(launch)


def test_the_nodes_make_valid_pools(client: api.Api) -> None:
    nodes, _ = client.list(api.NODES, None)
    plans = discovery.plans(nodes)
    assert plans, "no schedulable node"
    for plan in plans:
        fleet.PoolSpec.model_validate({**plan.spec, "cluster": "conformance"})
        host_discovery.object_name("conformance", plan.name)
