"""The slurm runtime (`Cluster.spec.runtime: slurm`): replicas as Slurm batch jobs.

The agent runs where Slurm's commands work (a login node) as the user whose jobs the
replicas are. Each replica is one job: one member per node under `srun`, the leader's address
written back through the data dir, which must therefore be on a filesystem the compute nodes
share (docs/runtimes/slurm.md). Modules: `script` renders the job, `queue` parses what Slurm
says, `commands` runs Slurm's commands, `files` holds what the job and the agent share,
`records` the state file, `pools` the discovery, `runtime` the Runtime itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pydantic

from inferplane.agent import discovery
from inferplane.agent.runtime import base
from inferplane.agent.runtime.slurm import commands, pools, runtime
from inferplane.api import fleet

if TYPE_CHECKING:  # registry imports this package to list it: no cycle at run time
    from inferplane.agent.runtime import registry

KIND = runtime.KIND


class SettingsError(base.RuntimeFailure):
    """The Cluster's spec.slurm is not valid; the message names the field."""


def settings_of(options: registry.RuntimeOptions) -> runtime.SlurmSettings:
    """The runtime's settings: the data dir from the command line, spec.slurm from the
    Cluster (already validated by admission; checked again, as the agent reads it raw)."""
    try:
        spec = fleet.SlurmRuntimeSpec.model_validate(options.settings)
    except pydantic.ValidationError as exc:
        raise SettingsError(f"spec.slurm: {exc}") from exc
    return runtime.SlurmSettings(options.data_dir, spec=spec)


def build(options: registry.RuntimeOptions) -> base.Runtime:
    """The registry's factory for `slurm`."""
    return runtime.SlurmRuntime(settings_of(options))


def discover(options: registry.RuntimeOptions) -> list[discovery.PoolPlan]:
    """The registry's discovery for `slurm`: the pools of the nodes of spec.slurm.partition
    (every partition when unset), from sinfo."""
    spec = settings_of(options).spec
    return pools.plans(commands.Commands().nodes(spec.partition))
