"""The kubernetes runtime (`Cluster.spec.runtime: kubernetes`): replicas as pods.

`build` and `discover` are its entries in the runtime registry: the runtime, configured by the
Cluster's `spec.kubernetes` (`fleet.KubernetesRuntimeSpec`) and connected to the API server
of $KUBECONFIG (or ~/.kube/config), or of the pod it runs in; and the cluster's pools, one per
shape of its schedulable Nodes. The modules: `render` (a launch as manifests, pure),
`discovery` (Nodes as pools, pure), `launches` (a replica as a launch), `status` (pods as a
phase, pure), `watch` (the informers and their cache), `api` (the one wrapper of the
Kubernetes client) and `runtime` (the Runtime itself). docs/runtimes/kubernetes.md tells how
to run it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pydantic

from inferplane.agent import discovery as host_discovery
from inferplane.agent.runtime import base
from inferplane.agent.runtime.kubernetes import api, discovery, runtime
from inferplane.api import fleet

if TYPE_CHECKING:
    from inferplane.agent.runtime import registry

KIND = runtime.KIND


def settings_of(raw: dict[str, object]) -> fleet.KubernetesRuntimeSpec:
    """The Cluster's spec.kubernetes, validated; RuntimeFailure naming the field."""
    try:
        return fleet.KubernetesRuntimeSpec.model_validate(raw or {})
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"spec.kubernetes.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        message = f"the Cluster's spec.kubernetes is not valid: {problems}"
        raise base.RuntimeFailure(message) from exc


def build(options: registry.RuntimeOptions) -> base.Runtime:
    """The runtime, connected (nothing is sent until it adopts or starts)."""
    settings = settings_of(options.settings)
    return runtime.KubernetesRuntime(api.Api.connect(), settings)


def discover(options: registry.RuntimeOptions) -> list[host_discovery.PoolPlan]:
    """The pools of the cluster's schedulable Nodes, read once."""
    client = api.Api.connect()
    try:
        nodes, _ = client.list(api.NODES, None)
    except api.ApiError as exc:
        raise base.RuntimeFailure(f"cannot list the cluster's Nodes for its pools: {exc}") from exc
    finally:
        client.close()
    return discovery.plans(nodes)
