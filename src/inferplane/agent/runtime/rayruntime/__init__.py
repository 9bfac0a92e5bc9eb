"""The Ray runtime (`Cluster.spec.runtime: ray`): replicas as placement groups on a Ray
cluster, their engines as child processes of named, detached actors (docs/runtimes/ray.md).

Ray is an optional dependency (`pip install 'inferplane[ray]'`): this package imports it only
when an agent builds the runtime or discovers its pools, so an agent of another runtime, and
the registry that lists this one, never need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inferplane.agent.runtime import base
from inferplane.agent.runtime.rayruntime import settings

if TYPE_CHECKING:
    from inferplane.agent import discovery
    from inferplane.agent.runtime import registry

KIND = "ray"
"""This runtime's name in the registry and in a Cluster's spec.runtime."""


class RayMissing(base.RuntimeFailure):
    """Ray is not installed where the agent runs."""


def build(options: registry.RuntimeOptions) -> base.Runtime:
    """The Ray runtime of the Cluster whose spec.ray is `options.settings`."""
    _require_ray()
    from inferplane.agent.runtime.rayruntime import runtime

    return runtime.RayRuntime(settings.settings_of(options))


def discover(options: registry.RuntimeOptions) -> list[discovery.PoolPlan]:
    """The Ray cluster's pools: one per distinct node shape of its alive nodes."""
    _require_ray()
    from inferplane.agent.runtime.rayruntime import cluster, pools

    chosen = settings.settings_of(options)
    cluster.connect(chosen.address, chosen.namespace)
    return pools.plans_of(cluster.nodes())


def _require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise RayMissing(
            "Cluster spec.runtime is ray, but Ray is not installed where this agent runs:"
            " pip install 'inferplane[ray]'"
        ) from exc
