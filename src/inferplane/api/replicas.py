"""The Replica kind: one placed instance of a deployment, written by the control plane.

A Replica carries everything its agent needs to run it (the resolved model source, the engine,
the resources), so an agent keeps serving from its last copy when the control plane is away.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from inferplane.api import deployments, engines, meta, models, values

ReplicaPhase = Literal[
    "Pending", "Scheduled", "Starting", "Ready", "Draining", "Failed", "CrashLoopBackOff", "Unknown"
]


class ResolvedModel(meta.Model):
    """The model version a replica runs, resolved from its Model when the replica is created."""

    name: meta.DnsLabel
    """Name of the Model."""
    version: models.VersionName
    """Name of the version."""
    source: values.ModelUri
    """Where the weights are, copied from the version."""
    format: models.ModelFormat = "safetensors"
    """How the weights are stored, copied from the version."""
    revision: str | None = None
    """Git revision for hf:// sources, copied from the version."""


class DeviceAllocation(meta.Model):
    """Devices of one pool node given to one device request of the replica."""

    request: meta.DnsLabel
    """Name of the deployment's device request this satisfies."""
    group: meta.DnsLabel
    """Name of the pool's device group the devices come from."""
    node: int = Field(ge=0)
    """Index of the pool node."""
    indexes: list[int] = Field(default_factory=list)
    """Indexes of the devices within the group on that node, e.g. [0, 1]."""


class ReplicaSpec(meta.Model):
    """What to run, copied from the deployment, and where, once the scheduler binds it."""

    deployment: meta.DnsLabel
    """Name of the Deployment this replica belongs to."""
    model: ResolvedModel
    """The model version to load."""
    engine: engines.EngineSpec = Field(default_factory=engines.EngineSpec)
    """The engine, copied from the deployment."""
    resources: deployments.ResourcesSpec = Field(default_factory=deployments.ResourcesSpec)
    """Devices, CPU and memory per node and the node count, copied from the deployment."""
    serving: deployments.ServingSpec = Field(default_factory=deployments.ServingSpec)
    """Serving mode, copied from the deployment."""
    priority: int = Field(0, ge=-1000, le=1000)
    """Priority, copied from the deployment."""
    cluster: meta.DnsLabel | None = None
    """Cluster the scheduler bound the replica to; unset while Pending."""
    pool: meta.DnsLabel | None = None
    """Pool the scheduler bound the replica to; unset while Pending."""
    nodes: list[int] = Field(default_factory=list)
    """Indexes of the pool nodes the replica occupies, the gang leader first."""
    devices: list[DeviceAllocation] = Field(default_factory=list)
    """Devices allocated on those nodes."""

    def is_bound(self) -> bool:
        return self.cluster is not None and self.pool is not None


class ReplicaLoad(meta.Model):
    """Load the agent last measured on the replica's engine."""

    running: int = Field(0, ge=0)
    """Requests being decoded or prefilled."""
    waiting: int = Field(0, ge=0)
    """Requests queued in the engine."""
    kvCacheUsage: float = Field(0.0, ge=0, le=1)
    """Fraction of the KV cache in use, 0 to 1."""
    ttftSeconds: float | None = Field(None, ge=0)
    """Mean time to first token over the last interval, in seconds."""
    tpotSeconds: float | None = Field(None, ge=0)
    """Mean time per output token (after the first) over the last interval, in seconds."""
    generationTokensPerSecond: float = Field(0.0, ge=0)
    """Output tokens per second over the last interval."""
    promptTokensPerSecond: float = Field(0.0, ge=0)
    """Prompt tokens per second over the last interval."""
    requestsPerSecond: float = Field(0.0, ge=0)
    """Finished requests per second over the last interval."""
    observedTime: datetime | None = None
    """When these numbers were measured."""


class ReplicaStatus(meta.Status):
    """What the agent observes of the replica's engine."""

    phase: ReplicaPhase = "Pending"
    """Pending (not placed), Scheduled, Starting (loading weights), Ready, Draining (finishing
    requests before it stops), Failed, CrashLoopBackOff (restarting after repeated crashes) or
    Unknown: its cluster is NotReady, so no agent vouches for it (set by the control plane,
    with condition ClusterReady=False, as Kubernetes marks the pods of a NotReady node); the
    agent reports the real phase again once it is back."""
    url: values.HttpUrl | None = None
    """Root URL of the engine once it listens, e.g. http://10.0.0.5:8001."""
    restarts: int = Field(0, ge=0)
    """How many times the agent restarted the engine."""
    load: ReplicaLoad = Field(default_factory=ReplicaLoad)
    """The last load measurement."""
    startTime: datetime | None = None
    """When the engine process last started."""
    lastProbeTime: datetime | None = None
    """When the agent last probed the engine's health."""
    message: str = ""
    """Why the replica is not Ready, e.g. the engine's last log line before it exited."""
    engineTokenSecret: meta.DnsLabel | None = None
    """The Secret in inferplane-system (engine-<replica uid>) holding the token the replica's
    engine requires as `Authorization: Bearer`, set by the control plane once it made one; the
    agent starts the engine only after it is set, and never shows the token."""


class Replica(meta.Resource[ReplicaSpec, ReplicaStatus]):
    """One placed instance of a deployment: its cluster, pool, devices, phase and address."""

    KIND: ClassVar[str] = "Replica"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["Replica"] = "Replica"
    """Always Replica."""
    spec: ReplicaSpec
    """What to run, copied from the deployment, and where, bound by the scheduler."""
    status: ReplicaStatus = Field(default_factory=ReplicaStatus)
    """Phase, address and load, written from the agent's reports."""
