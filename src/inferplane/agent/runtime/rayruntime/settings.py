"""What the Ray runtime is told: the Cluster's spec.ray (validated by its schema), where the
agent keeps logs, and the timings of probes and restarts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pydantic

from inferplane.agent.runtime import base
from inferplane.api import fleet
from inferplane.backoff import Backoff

if TYPE_CHECKING:  # registry imports this package: only its type is needed here
    from inferplane.agent.runtime import registry

NAMESPACE_PREFIX = "inferplane-"
RESTART_BACKOFF = Backoff(base=1.0, cap=60.0)


class SettingsError(base.RuntimeFailure):
    """The Cluster's spec.ray is not valid; the message names the field."""


@dataclass(frozen=True)
class RaySettings:
    address: str
    """The Ray cluster, as `ray.init` takes it: auto, HOST:PORT or ray://HOST:PORT."""
    namespace: str
    """The Ray namespace of this agent's placement groups and actors: inferplane-<cluster>.
    Two agents must never share one: each adopts (and stops) what it finds there."""
    log_dir: Path
    """Where each engine actor writes its engine's log, on its node: this path where the node
    can write it (on the agent's host, always), else the node's temporary directory."""
    backoff: Backoff = RESTART_BACKOFF
    """Delay before restarting after the n-th consecutive crash."""
    probe_period: float = 5.0
    """Seconds between probes of a Ready engine."""
    startup_probe_period: float = 0.5
    """Seconds between probes of an engine that has not turned Ready yet."""
    failure_threshold: int = 3
    """Consecutive failed probes of a Ready engine before it is taken out (and, if it does not
    answer at all, its gang restarted)."""
    stable_after: float = 30.0
    """Seconds Ready after which the crash count starts again from zero."""
    call_timeout: float = 0.2
    """The longest `sync()` waits for the actors' answers; later answers count next sync."""
    adopt_timeout: float = 15.0
    """The longest `adopt()` waits for the actors an earlier agent left to describe themselves."""


def settings_of(options: registry.RuntimeOptions, *, cluster: str | None = None) -> RaySettings:
    """The runtime's settings from the agent's options: spec.ray validated with its schema,
    the namespace of `cluster` (by default, the data dir's name: agents/<cluster>)."""
    try:
        spec = fleet.RayRuntimeSpec.model_validate(options.settings or {})
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"spec.ray.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(problems) from exc
    name = cluster or options.cluster or options.data_dir.name
    return RaySettings(
        address=spec.address,
        namespace=namespace_of(name),
        log_dir=options.data_dir / "logs",
    )


def namespace_of(cluster: str) -> str:
    """inferplane-<cluster>, in the characters Ray namespaces take."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", cluster).strip("-") or "default"
    return NAMESPACE_PREFIX + slug[:200]
