"""The runtimes an agent can run, by the name a Cluster's `spec.runtime` gives them.

Each entry builds its runtime from what `inferplane agent` was told (`RuntimeOptions`); an
agent runs the one its Cluster names (`choice`). Adding a runtime is adding an entry here once
it is implemented: a kind the schema allows but no entry builds is refused
with the kinds this agent has, never replaced by another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferplane.agent import discovery
from inferplane.agent.runtime import base, process, rayruntime, slurm
from inferplane.api import fleet


class UnknownRuntime(base.RuntimeFailure):
    """The Cluster's spec.runtime names a runtime this agent does not have."""


@dataclass(frozen=True)
class RuntimeOptions:
    """What the agent's command line says about running engines; each runtime takes what
    applies to it."""

    data_dir: Path
    """Where the runtime keeps engine logs and its state."""
    host: str = "127.0.0.1"
    """Address engines listen on, and the host of their URLs (process runtime)."""
    keep_engines_on_exit: bool = False
    """Engines outlive the agent, for the next agent to adopt."""
    cluster: str = ""
    """The agent's Cluster: runtimes that share a scheduler between planes (a Ray cluster, a
    Kubernetes namespace) tell their own objects apart by it."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The Cluster's section for the runtime (spec.kubernetes, spec.slurm, spec.ray) as
    written; each runtime validates its own with its schema in api/fleet.py."""


Factory = Callable[[RuntimeOptions], base.Runtime]
Discover = Callable[[RuntimeOptions], list[discovery.PoolPlan]]
"""A runtime's own pool discovery (from its scheduler's nodes), used when the agent is given
no pool file; a runtime without one reports the host's pools."""


def _process(options: RuntimeOptions) -> base.Runtime:
    settings = process.ProcessSettings(
        options.data_dir,
        # An engine must outlive a killed agent only when the next one is to adopt it.
        die_with_agent=not options.keep_engines_on_exit,
        host=options.host,
    )
    return process.ProcessRuntime(settings)


def _kubernetes(options: RuntimeOptions) -> base.Runtime:
    return _kubernetes_module().build(options)


def _kubernetes_pools(options: RuntimeOptions) -> list[discovery.PoolPlan]:
    return _kubernetes_module().discover(options)


def _kubernetes_module() -> Any:
    """The kubernetes runtime, imported when a Cluster asks for it: its client is an extra
    (`pip install 'inferplane[kubernetes]'`), not something every agent needs."""
    try:
        from inferplane.agent.runtime import kubernetes
    except ImportError as exc:
        raise base.RuntimeFailure(
            f"the kubernetes runtime needs the Kubernetes client ({exc.name} is missing):"
            " pip install 'inferplane[kubernetes]'"
        ) from exc
    return kubernetes


RUNTIMES: Mapping[str, Factory] = {
    process.KIND: _process,
    slurm.KIND: slurm.build,
    "kubernetes": _kubernetes,
    rayruntime.KIND: rayruntime.build,
}
DISCOVERY: Mapping[str, Discover] = {
    slurm.KIND: slurm.discover,
    "kubernetes": _kubernetes_pools,
    rayruntime.KIND: rayruntime.discover,
}
SECTIONS: Mapping[str, str] = {"kubernetes": "kubernetes", "slurm": "slurm", "ray": "ray"}
"""Runtime → the field of ClusterSpec holding its settings."""

DEFAULT: str = fleet.ClusterSpec.model_fields["runtime"].default
"""The runtime of a Cluster whose spec names none: the schema's default."""


def kinds() -> list[str]:
    """The runtimes this agent can run, sorted."""
    return sorted(RUNTIMES)


def kind_of(cluster: dict[str, Any]) -> str:
    """The runtime a Cluster object names, as written (the default when it names none)."""
    return str((cluster.get("spec") or {}).get("runtime") or DEFAULT)


def settings_of(cluster: dict[str, Any], kind: str) -> dict[str, Any]:
    """The Cluster's settings section for runtime `kind`, as written ({} when unset)."""
    section = SECTIONS.get(kind)
    value = (cluster.get("spec") or {}).get(section) if section else None
    return dict(value) if isinstance(value, dict) else {}


def pools(
    kind: str, options: RuntimeOptions, pool_file: Path | None, *, cluster: str
) -> list[discovery.PoolPlan]:
    """The pools the agent reports: the pool file's when given, else the runtime's own
    discovery where it has one, else the host's."""
    discover = DISCOVERY.get(kind)
    if pool_file is not None or discover is None:
        return discovery.plans(pool_file, cluster=cluster)
    return discover(options)


def build(kind: str, options: RuntimeOptions, *, cluster: str) -> base.Runtime:
    """The runtime `kind`, built; UnknownRuntime, naming spec.runtime and the kinds there are,
    when this agent has none of that name."""
    factory = RUNTIMES.get(kind)
    if factory is None:
        raise UnknownRuntime(
            f"Cluster {cluster!r} has spec.runtime {kind!r}, which this agent cannot run;"
            f" the runtimes it has: {', '.join(kinds())}"
        )
    return factory(options)
