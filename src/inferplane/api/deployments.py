"""The Deployment kind: what to run, on what, how many, where, and how to roll it out.

A Deployment describes the shape of its replicas (devices per node, nodes per replica, engine
flags) and nothing about the engine's internals; the deployment controller creates Replicas
from it, the scheduler places them and the autoscaler sizes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from inferplane.api import engines, errors, meta, models, selectors, values
from inferplane.api.autoscaling import AutoscalingSpec  # a field is named autoscaling

Strategy = Literal["binpack", "spread", "cheapest", "cached"]
ServingMode = Literal["aggregated", "prefillDecode"]
DeploymentPhase = Literal["Pending", "Progressing", "Ready", "Degraded", "ScaledToZero", "Failed"]
MAX_REPLICAS = 1000
"""The most replicas one Deployment may ask for: a typo such as 1000000000 is refused at
admission instead of flooding the store with Replicas. A namespace's Quota bounds it further."""


class DeviceRequest(meta.Model):
    """Devices each node of a replica needs, chosen by CEL selectors as Kubernetes DRA does."""

    name: meta.DnsLabel = "gpu"
    """Name of the request, unique within the deployment; allocations refer to it."""
    count: int = Field(1, ge=1)
    """How many matching devices each node of a replica needs."""
    selectors: list[str] = Field(default_factory=list)
    """CEL expressions over a device, written as Kubernetes DRA writes them; all must hold, e.g.
    device.attributes["gpu.nvidia.com"].productName == "H100" or
    device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) >= 0. Admission
    refuses one that does not compile."""


class ResourcesSpec(meta.Model):
    """What one replica occupies: devices, CPU and memory per node, and how many nodes."""

    devices: list[DeviceRequest] = Field(default_factory=list)
    """Device requests per node; empty runs on CPU only."""
    nodes: int = Field(1, ge=1)
    """Nodes per replica: more than 1 makes a gang (a leader and workers) that serves together."""
    cpu: values.Quantity | None = None
    """CPU cores per node, e.g. 4 or 500m; unset is not accounted."""
    memory: values.Quantity | None = None
    """Memory per node, e.g. 16Gi; unset is not accounted."""

    @model_validator(mode="after")
    def _unique_request_names(self) -> ResourcesSpec:
        seen: set[str] = set()
        for i, request in enumerate(self.devices):
            if request.name in seen:
                raise errors.field_error(
                    "devices", i, "name", message=f"device request {request.name!r} is listed twice"
                )
            seen.add(request.name)
        return self


class PlacementSpec(meta.Model):
    """Where replicas may go and which of the fitting pools to prefer."""

    clusterSelector: selectors.LabelSelector = Field(default_factory=selectors.LabelSelector)
    """Clusters replicas may run on, by their labels; the empty selector allows every cluster."""
    strategy: Strategy = "binpack"
    """How to choose among fitting pools: binpack (fill used nodes first), spread (across
    clusters, or values of spreadLabel), cheapest (lowest price per replica-hour), cached
    (clusters that already hold the weights)."""
    spreadLabel: meta.LabelKey | None = None
    """With strategy spread, spread over values of this cluster label (e.g. region) instead of
    over clusters."""
    maxPricePerHour: values.Price | None = None
    """Most one replica may cost per hour in US dollars (nodes times the pool's node price);
    unset means no limit."""
    allowSpot: bool = True
    """False keeps replicas off spot pools."""


class ServingRole(meta.Model):
    """One side of prefill/decode disaggregated serving."""

    count: int = Field(1, ge=1)
    """Engines of this role in each replica."""
    args: list[str] = Field(default_factory=list)
    """Flags added to the engine's args for this role, e.g. the KV-transfer configuration."""


class ServingSpec(meta.Model):
    """Whether prefill and decode run in the same engine or in separate ones."""

    mode: ServingMode = "aggregated"
    """aggregated (one engine does both) or prefillDecode (separate engines on the same cluster
    hand the KV cache over; the engines' flags carry the transfer configuration)."""
    prefill: ServingRole = Field(default_factory=ServingRole)
    """Prefill engines per replica, in prefillDecode mode."""
    decode: ServingRole = Field(default_factory=ServingRole)
    """Decode engines per replica, in prefillDecode mode."""


class RolloutSpec(meta.Model):
    """How a change of version, engine or resources replaces running replicas."""

    strategy: Literal["rollingUpdate", "recreate"] = "rollingUpdate"
    """rollingUpdate replaces replicas a few at a time; recreate stops all old ones first."""
    maxSurge: values.IntOrPercent = 1
    """Replicas above the desired count allowed during a rolling update: a count or a percentage
    (rounded up)."""
    maxUnavailable: values.IntOrPercent = 0
    """Desired replicas allowed to be not ready during a rolling update: a count or a percentage
    (rounded down)."""
    progressDeadlineSeconds: values.Seconds = 1800.0
    """Seconds without progress before the rollout is reported as stalled."""

    @model_validator(mode="after")
    def _can_progress(self) -> RolloutSpec:
        if self.maxSurge in (0, "0%") and self.maxUnavailable in (0, "0%"):
            raise errors.field_error(
                "maxSurge", message="maxSurge and maxUnavailable cannot both be 0"
            )
        return self


class DeploymentSpec(meta.Model):
    """What to run: a model version on an engine, with devices, replicas and placement."""

    model: meta.DnsLabel
    """Name of the Model to run, in the deployment's namespace."""
    modelVersion: models.VersionName | None = None
    """Version to run; unset runs the newest production version, else the newest staging one."""
    engine: engines.EngineSpec = Field(default_factory=engines.EngineSpec)
    """The engine recipe and its flags."""
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    """Devices, CPU and memory per node, and nodes per replica."""
    replicas: int = Field(1, ge=0, le=MAX_REPLICAS)
    """Desired replicas, at most 1000. With autoscaling enabled, the autoscaler sets it within
    minReplicas and maxReplicas: the scale subresource refuses a person's value (409), and an
    update or apply keeps the autoscaler's (this field is taken as written only on create, or
    when autoscaling is being enabled or disabled). A namespace's Quota
    (maxReplicas, maxDevices) may hold the replicas created below this count."""
    autoscaling: AutoscalingSpec | None = None
    """Scale with load; unset keeps replicas fixed."""
    placement: PlacementSpec = Field(default_factory=PlacementSpec)
    """Which clusters and pools replicas may use, and which to prefer."""
    priority: int = Field(0, ge=-1000, le=1000)
    """When capacity is short, pending replicas are placed highest priority first, and a
    replica that fits nowhere may evict replicas of strictly lower priority (replaced
    elsewhere first where the fleet has room; a deployment goes below its minReplicas only
    when nothing else frees room). See docs/placement.md."""
    serving: ServingSpec = Field(default_factory=ServingSpec)
    """Aggregated or prefill/decode serving."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    """How changes replace running replicas."""

    @model_validator(mode="after")
    def _autoscaling_within_bound(self) -> DeploymentSpec:
        # The autoscaler writes spec.replicas up to maxReplicas: past the bound it would be
        # refused on every scale-up.
        if self.autoscaling is not None and self.autoscaling.maxReplicas > MAX_REPLICAS:
            raise errors.field_error(
                "autoscaling", "maxReplicas", message=f"must be at most {MAX_REPLICAS}"
            )
        return self

    def autoscaling_enabled(self) -> bool:
        return self.autoscaling is not None and self.autoscaling.enabled


class AutoscalingStatus(meta.Model):
    """The autoscaler's last look at a deployment, written when it scales and otherwise at
    most every 30 s (its samples are kept in memory, not here)."""

    mode: Literal["stable", "panic"] = "stable"
    """stable (the stable window decides) or panic (the panic window does; no scale-down)."""
    metric: str = ""
    """What decided: the spec's metric, ttft or tpot (an objective), or forecast."""
    value: float = 0.0
    """That metric's value per ready replica over the deciding window."""
    target: float = 0.0
    """Its target per replica (seconds, for ttft and tpot)."""
    desiredReplicas: int = Field(0, ge=0)
    """The replicas the autoscaler wants now."""
    reason: str = ""
    """Why, in words, e.g. "concurrency 14.2 per replica over target 4 (panic window)"."""
    lastScaleTime: datetime | None = None
    """When the autoscaler last changed spec.replicas."""
    lastScaleReason: str = ""
    """What it said then, e.g. "scaled 2 → 5: concurrency 14.2 per replica over target 4"."""
    coldStartSeconds: float | None = Field(None, ge=0)
    """Measured: seconds from a replica's creation to Ready, the latest one that came up; the
    predictive mode provisions this far ahead."""
    observedTime: datetime | None = None
    """When this was written."""
    resume: dict[str, Any] = Field(default_factory=dict)
    """The policy's carried state (panic start, recent recommendations), so that a new leader
    goes on where the last one stopped; not meant for people."""


class DeploymentStatus(meta.Status):
    """Replica counts by state, and the version being served."""

    phase: DeploymentPhase = "Pending"
    """Pending, Progressing (a rollout or scale is under way), Ready, Degraded (fewer ready than
    desired), ScaledToZero or Failed."""
    replicas: int = Field(0, ge=0)
    """Replicas that exist, old and new."""
    readyReplicas: int = Field(0, ge=0)
    """Replicas whose engine answers its health probe."""
    updatedReplicas: int = Field(0, ge=0)
    """Replicas that match the current spec."""
    modelVersion: models.VersionName | None = None
    """The model version the current spec resolves to."""
    autoscaling: AutoscalingStatus | None = None
    """The autoscaler's last decision; unset when the deployment is not autoscaled."""


class Deployment(meta.Resource[DeploymentSpec, DeploymentStatus]):
    """What to run: model version, engine, devices per replica, replicas or autoscaling,
    placement, priority and serving mode."""

    KIND: ClassVar[str] = "Deployment"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["Deployment"] = "Deployment"
    """Always Deployment."""
    spec: DeploymentSpec
    """The desired model, engine, resources, replica count and placement."""
    status: DeploymentStatus = Field(default_factory=DeploymentStatus)
    """Replica counts, written by the deployment controller."""


class ScaleSpec(meta.Model):
    """The desired replica count."""

    replicas: int = Field(0, ge=0, le=MAX_REPLICAS)
    """Desired replicas, at most 1000; writing it sets the deployment's spec.replicas."""


class ScaleStatus(meta.Status):
    """The observed replica count."""

    replicas: int = Field(0, ge=0)
    """Replicas that exist."""


class Scale(meta.Resource[ScaleSpec, ScaleStatus]):
    """The scale subresource of a Deployment (not stored; served at .../deployments/NAME/scale)."""

    KIND: ClassVar[str] = "Scale"

    kind: Literal["Scale"] = "Scale"
    """Always Scale."""
    spec: ScaleSpec = Field(default_factory=ScaleSpec)
    """The desired replica count."""
    status: ScaleStatus = Field(default_factory=ScaleStatus)
    """The observed replica count."""
