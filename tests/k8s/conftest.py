"""The conformance suite of the kubernetes runtime: against a REAL cluster, the one
$KUBECONFIG names. `make test-k8s` runs it (it sets INFERPLANE_K8S_CONFORMANCE=1); a plain
`pytest` does not collect it, and without $KUBECONFIG every test skips.

What the cluster needs: a namespace the user may create objects in (INFERPLANE_K8S_NAMESPACE,
default inferplane-conformance, created if missing and then removed), nodes that can pull
INFERPLANE_K8S_IMAGE (default python:3.12-alpine: the engine the tests run is Python's
http.server, so no model and no GPU are needed). Tests of gangs skip where LeaderWorkerSet
is not installed, tests of DRA where resource.k8s.io/v1 is not served.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from inferplane.agent.runtime.kubernetes import api
from inferplane.agent.runtime.kubernetes import runtime as kube_runtime
from inferplane.api import fleet

collect_ignore_glob = [] if os.environ.get("INFERPLANE_K8S_CONFORMANCE") == "1" else ["*"]

NAMESPACE = os.environ.get("INFERPLANE_K8S_NAMESPACE", "inferplane-conformance")
IMAGE = os.environ.get("INFERPLANE_K8S_IMAGE", "python:3.12-alpine")
NAMESPACES = api.Kind("", "v1", "namespaces", "Namespace", namespaced=False)


@pytest.fixture(scope="session")
def client() -> Iterator[api.Api]:
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("no KUBECONFIG: the conformance suite needs a real cluster")
    connected = api.Api.connect(kubeconfig=os.environ["KUBECONFIG"])
    created = False
    try:
        connected.get(NAMESPACES, None, NAMESPACE)
    except api.NotFound:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        connected.create(None, namespace, kind=NAMESPACES)
        created = True
    yield connected
    if created:
        connected.delete(NAMESPACES, None, NAMESPACE)
    connected.close()


@pytest.fixture
def settings(client: api.Api) -> fleet.KubernetesRuntimeSpec:
    return fleet.KubernetesRuntimeSpec(namespace=NAMESPACE)


@pytest.fixture
def make_runtime(
    client: api.Api, settings: fleet.KubernetesRuntimeSpec
) -> Iterator[Callable[[], kube_runtime.KubernetesRuntime]]:
    made: list[kube_runtime.KubernetesRuntime] = []

    def make() -> kube_runtime.KubernetesRuntime:
        runtime = kube_runtime.KubernetesRuntime(
            api.Api.connect(kubeconfig=os.environ["KUBECONFIG"]), settings
        )
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close(grace=5, stop_engines=True)


@pytest.fixture
def replica_name() -> str:
    return f"conformance/r-{uuid.uuid4().hex[:8]}"
