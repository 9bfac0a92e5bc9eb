"""Which runtime an agent runs: its Cluster's spec.runtime, read once at start.

The runtime is chosen before anything else runs: the first thing the agent does with it is
adopt the engines an earlier agent on the same data dir left running, and only the runtime
that started them can. So the agent reads its Cluster with one GET before it joins (joining
comes later, after the first pass over its replicas; docs/workload-planes.md). The answer is
remembered in the data dir, because an agent must start without the control plane (static
stability): restarted during an outage, it runs what it ran before.

- The control plane answers with the Cluster: its spec.runtime (the schema's default,
  process, when unset).
- No Cluster yet, or no answer: the runtime remembered in the data dir, else the default.
  The join then creates the Cluster with the runtime the agent runs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inferplane import client as api_client
from inferplane import logs
from inferplane.agent.runtime import base, registry

log = logging.getLogger(__name__)

FILE = "runtime.json"


@dataclass(frozen=True)
class Choice:
    """The runtime an agent runs, and how it came to it (for its log)."""

    kind: str
    """The runtime's name in the registry."""
    source: str
    """Where the name came from: cluster, remembered or default."""


def runtime_for(
    make_client: Callable[[], api_client.Client],
    cluster: str,
    data_dir: Path,
    options: registry.RuntimeOptions,
) -> base.Runtime:
    """The runtime the agent of `cluster` runs, built and remembered; UnknownRuntime when the
    Cluster names one this agent does not have."""
    chosen = learn(make_client, cluster, data_dir)
    runtime = registry.build(chosen.kind, options, cluster=cluster)
    remember(data_dir, cluster, chosen.kind)
    logs.event(log, "runtime chosen", cluster=cluster, runtime=chosen.kind, source=chosen.source)
    return runtime


def path_in(data_dir: Path) -> Path:
    return data_dir / FILE


def learn(make_client: Callable[[], api_client.Client], cluster: str, data_dir: Path) -> Choice:
    """The runtime this agent runs; see the module docstring."""
    try:
        with make_client() as client:
            return Choice(registry.kind_of(client.get("Cluster", cluster)), "cluster")
    except api_client.NotFound:
        pass  # created at join, with the runtime chosen here
    except api_client.ClientError as exc:
        # The agent starts anyway, as it always could without the control plane: its
        # engines keep serving, and the heartbeat goes on trying (and saying why it fails).
        logs.event(log, "cluster unreadable at start: runtime from the data dir",
                   level=logging.WARNING, cluster=cluster, error=exc)  # fmt: skip
    remembered = recall(data_dir, cluster)
    if remembered is not None:
        return Choice(remembered, "remembered")
    return Choice(registry.DEFAULT, "default")


def recall(data_dir: Path, cluster: str) -> str | None:
    """The runtime remembered for `cluster` in `data_dir`; None if there is none (or the file
    is unreadable, or another cluster's)."""
    try:
        saved = json.loads(path_in(data_dir).read_text())
        kind, owner = str(saved["runtime"]), str(saved["cluster"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return kind if owner == cluster else None


def remember(data_dir: Path, cluster: str, kind: str) -> None:
    """Keep `kind` as the runtime of `cluster`, atomically."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = path_in(data_dir)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"cluster": cluster, "runtime": kind}))
    os.replace(partial, path)
