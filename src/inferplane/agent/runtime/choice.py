"""Which runtime an agent runs: its Cluster's spec.runtime, read once at start.

The runtime is chosen before anything else runs: the first thing the agent does with it is
adopt the engines an earlier agent on the same data dir left running, and only the runtime
that started them can. So the agent reads its Cluster with one GET before it joins (joining
comes later, after the first pass over its replicas; docs/workload-planes.md). The answer is
remembered in the data dir, because an agent must start without the control plane (static
stability): restarted during an outage, it runs what it ran before.

- The control plane answers with the Cluster: its spec.runtime (the schema's default,
  process, when unset), and that runtime's section of the spec (spec.kubernetes, spec.slurm,
  spec.ray), handed to the runtime as `RuntimeOptions.settings` and remembered with it.
- No Cluster yet, or no answer: the runtime remembered in the data dir, else the default.
  The join then creates the Cluster with the runtime the agent runs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
    settings: dict[str, Any] = field(default_factory=dict)
    """The Cluster's section for this runtime (spec.kubernetes, spec.slurm, spec.ray), as
    written; empty for its defaults."""


@dataclass(frozen=True)
class Chosen:
    """The runtime built, and the options it was built with (its settings filled in)."""

    runtime: base.Runtime
    options: registry.RuntimeOptions


def runtime_for(
    make_client: Callable[[], api_client.Client],
    cluster: str,
    data_dir: Path,
    options: registry.RuntimeOptions,
) -> Chosen:
    """The runtime the agent of `cluster` runs, built and remembered; UnknownRuntime when the
    Cluster names one this agent does not have."""
    chosen = learn(make_client, cluster, data_dir)
    options = replace(options, cluster=cluster, settings=chosen.settings)
    runtime = registry.build(chosen.kind, options, cluster=cluster)
    remember(data_dir, cluster, chosen.kind, chosen.settings)
    logs.event(log, "runtime chosen", cluster=cluster, runtime=chosen.kind, source=chosen.source)
    return Chosen(runtime, options)


def path_in(data_dir: Path) -> Path:
    return data_dir / FILE


def learn(make_client: Callable[[], api_client.Client], cluster: str, data_dir: Path) -> Choice:
    """The runtime this agent runs; see the module docstring."""
    try:
        with make_client() as client:
            obj = client.get("Cluster", cluster)
            kind = registry.kind_of(obj)
            return Choice(kind, "cluster", registry.settings_of(obj, kind))
    except api_client.NotFound:
        pass  # created at join, with the runtime chosen here
    except api_client.ClientError as exc:
        # The agent starts anyway, as it always could without the control plane: its
        # engines keep serving, and the heartbeat goes on trying (and saying why it fails).
        logs.event(log, "cluster unreadable at start: runtime from the data dir",
                   level=logging.WARNING, cluster=cluster, error=exc)  # fmt: skip
    remembered = recall_choice(data_dir, cluster)
    if remembered is not None:
        return remembered
    return Choice(registry.DEFAULT, "default")


def recall(data_dir: Path, cluster: str) -> str | None:
    """The runtime remembered for `cluster` in `data_dir`; None if there is none (or the file
    is unreadable, or another cluster's)."""
    remembered = recall_choice(data_dir, cluster)
    return remembered.kind if remembered is not None else None


def recall_choice(data_dir: Path, cluster: str) -> Choice | None:
    """The runtime and its settings remembered for `cluster`; None as for `recall`."""
    try:
        saved = json.loads(path_in(data_dir).read_text())
        kind, owner = str(saved["runtime"]), str(saved["cluster"])
        settings = saved.get("settings") or {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if owner != cluster or not isinstance(settings, dict):
        return None
    return Choice(kind, "remembered", settings)


def remember(
    data_dir: Path, cluster: str, kind: str, settings: dict[str, Any] | None = None
) -> None:
    """Keep `kind` (and its settings) as the runtime of `cluster`, atomically."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = path_in(data_dir)
    partial = path.with_suffix(".partial")
    saved = {"cluster": cluster, "runtime": kind, "settings": settings or {}}
    partial.write_text(json.dumps(saved))
    os.replace(partial, path)
