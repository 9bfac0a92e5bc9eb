"""The runtimes an agent can run, by the name a Cluster's `spec.runtime` gives them.

Each entry builds its runtime from what `inferplane agent` was told (`RuntimeOptions`); an
agent runs the one its Cluster names (`choice`). Adding a runtime is adding an entry here once
it is implemented: a kind the schema allows but no entry builds (kubernetes, today) is refused
with the kinds this agent has, never replaced by another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferplane.agent.runtime import base, process
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


Factory = Callable[[RuntimeOptions], base.Runtime]


def _process(options: RuntimeOptions) -> base.Runtime:
    settings = process.ProcessSettings(
        options.data_dir,
        # An engine must outlive a killed agent only when the next one is to adopt it.
        die_with_agent=not options.keep_engines_on_exit,
        host=options.host,
    )
    return process.ProcessRuntime(settings)


RUNTIMES: Mapping[str, Factory] = {process.KIND: _process}

DEFAULT: str = fleet.ClusterSpec.model_fields["runtime"].default
"""The runtime of a Cluster whose spec names none: the schema's default."""


def kinds() -> list[str]:
    """The runtimes this agent can run, sorted."""
    return sorted(RUNTIMES)


def kind_of(cluster: dict[str, Any]) -> str:
    """The runtime a Cluster object names, as written (the default when it names none)."""
    return str((cluster.get("spec") or {}).get("runtime") or DEFAULT)


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
