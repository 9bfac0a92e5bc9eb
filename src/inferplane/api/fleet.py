"""The fleet-scoped kinds the platform team writes: Cluster, Pool and ModelCache."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from inferplane.api import errors, meta, models, selectors, values

# --- Cluster -------------------------------------------------------------------------------

ClusterPhase = Literal["Pending", "Ready", "NotReady", "Cordoned"]


RuntimeKind = Literal["process", "kubernetes", "slurm", "ray"]

_SLURM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RAY_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9.-]{1,253}:[0-9]{1,5})$")


def _slurm_name(value: str | None) -> str | None:
    if value is not None and not _SLURM_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a Slurm name: 1 to 64 letters, digits, '_', '.' and '-'"
        )
    return value


def _ray_address(value: str) -> str:
    if not _RAY_ADDRESS.match(value):
        raise ValueError(f"{value!r} is not a Ray address: auto, HOST:PORT or ray://HOST:PORT")
    return value


class KubernetesRuntimeSpec(meta.Model):
    """How the agent of a `runtime: kubernetes` cluster renders replicas."""

    namespace: meta.DnsLabel = "inferplane"
    """Kubernetes namespace the agent creates each replica's objects in."""
    devices: Literal["device-plugin", "dra"] = "device-plugin"
    """How GPUs are asked for: `nvidia.com/gpu` limits (the device plugin) or a DRA
    ResourceClaim (`resource.k8s.io/v1`) per replica."""
    deviceClassName: meta.DnsSubdomain = "gpu.nvidia.com"
    """The DeviceClass a DRA ResourceClaim requests devices of (devices: dra)."""
    modelCacheClaim: meta.DnsSubdomain | None = None
    """A PersistentVolumeClaim mounted as the model cache at /models in every engine pod;
    unset, each pod gets an emptyDir and downloads its model itself."""


class SlurmRuntimeSpec(meta.Model):
    """How the agent of a `runtime: slurm` cluster submits replicas as jobs."""

    partition: Annotated[str | None, AfterValidator(_slurm_name)] = None
    """Partition jobs are submitted to (`sbatch --partition`); unset, the default one."""
    account: Annotated[str | None, AfterValidator(_slurm_name)] = None
    """Account jobs are charged to (`sbatch --account`); unset, the user's default."""
    timeLimitMinutes: int = Field(0, ge=0, le=525_600)
    """Job time limit (`sbatch --time`); 0 leaves the partition's own."""


class RayRuntimeSpec(meta.Model):
    """How the agent of a `runtime: ray` cluster reaches its Ray cluster."""

    address: Annotated[str, AfterValidator(_ray_address)] = "auto"
    """The Ray cluster's address as `ray.init` takes it: auto (a cluster started on this
    host), HOST:PORT of its GCS, or ray://HOST:PORT of a Ray client server."""


class ClusterSpec(meta.Model):
    """One workload plane: where its agent runs replicas and how long it may stay silent."""

    runtime: RuntimeKind = "process"
    """How the agent runs engines: as local processes, as pods on a Kubernetes cluster, as
    Slurm jobs, or as actors on a Ray cluster (docs/runtimes.md)."""
    kubernetes: KubernetesRuntimeSpec | None = None
    """Settings of the kubernetes runtime; unset, its defaults."""
    slurm: SlurmRuntimeSpec | None = None
    """Settings of the slurm runtime; unset, its defaults."""
    ray: RayRuntimeSpec | None = None
    """Settings of the ray runtime; unset, its defaults."""
    region: meta.LabelValue = ""
    """Region the cluster runs in, e.g. eu-west-1, for spreading and locality; '' if unknown."""
    provider: meta.LabelValue = ""
    """Who provides the machines, e.g. aws, gcp, onprem, laptop. '' if unknown."""
    cordoned: bool = False
    """True stops new replicas from being placed here; running replicas stay."""
    heartbeatGraceSeconds: values.Seconds = 30.0
    """Seconds without an agent heartbeat before the cluster is marked NotReady."""
    evictionGraceSeconds: float = Field(120.0, ge=0)
    """Seconds a cluster may stay NotReady before its replicas are re-placed elsewhere."""


class ClusterStatus(meta.Status):
    """What the agent last reported, and whether it is still heard from."""

    phase: ClusterPhase = "Pending"
    """Pending (agent never joined), Ready, NotReady (heartbeats missed) or Cordoned."""
    lastHeartbeatTime: datetime | None = None
    """When the agent last reported in."""
    agentVersion: str | None = None
    """The inferplane version the agent runs."""
    runtimeVersion: str | None = None
    """Version of the runtime under the agent, e.g. the Kubernetes server version."""


class Cluster(meta.Resource[ClusterSpec, ClusterStatus]):
    """A workload plane: one agent, the pools of nodes it manages and the replicas it runs."""

    KIND: ClassVar[str] = "Cluster"
    NAMESPACED: ClassVar[bool] = False

    kind: Literal["Cluster"] = "Cluster"
    """Always Cluster."""
    spec: ClusterSpec = Field(default_factory=ClusterSpec)
    """Runtime, region, provider, cordon and heartbeat tolerance."""
    status: ClusterStatus = Field(default_factory=ClusterStatus)
    """Heartbeats and agent facts, written by the control plane from the agent's reports."""


# --- Pool ----------------------------------------------------------------------------------


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_driver(value: str) -> str:
    """A DRA driver name: a DNS subdomain such as gpu.nvidia.com, or '' for none."""
    if value and (len(value) > 253 or not _DNS_SUBDOMAIN.match(value)):
        raise ValueError(f"{value!r} is not a DNS subdomain such as gpu.nvidia.com")
    return value


class DeviceGroup(meta.Model):
    """Identical devices on each node of a pool, described as Kubernetes DRA describes them.

    Attribute and capacity names are DRA's: `domain/name` (gpu.nvidia.com/productName), or a
    bare `name` that belongs to the group's driver, as in a DRA ResourceSlice. Device
    selectors see them as `device.attributes["gpu.nvidia.com"].productName` and
    `device.capacity["gpu.nvidia.com"].memory`.
    """

    name: meta.DnsLabel = "gpu"
    """Name of the group within the pool, e.g. gpu or mig-1g10gb; allocations refer to it."""
    count: int = Field(1, ge=1)
    """How many such devices each node has (for a MIG profile: slices per node)."""
    driver: Annotated[str, AfterValidator(check_driver)] = ""
    """The DRA driver that owns the devices, e.g. gpu.nvidia.com: attribute and capacity names
    without a domain belong to it, and selectors read it as device.driver. '' for none, in
    which case every name must carry its domain."""
    attributes: dict[str, values.Scalar] = Field(default_factory=dict)
    """Facts selectors test, keyed like DRA: gpu.nvidia.com/productName: H100, or productName:
    H100 with driver gpu.nvidia.com."""
    capacity: dict[str, values.Quantity] = Field(default_factory=dict)
    """Amounts per device, keyed like attributes, e.g. gpu.nvidia.com/memory: 80Gi; selectors
    compare them as quantities."""

    @model_validator(mode="after")
    def _qualified_names(self) -> DeviceGroup:
        for field_name in ("attributes", "capacity"):
            for key in getattr(self, field_name):
                if (problem := self._name_problem(key)) is not None:
                    raise errors.field_error(field_name, key, message=problem)
        return self

    def _name_problem(self, key: str) -> str | None:
        domain, _, name = key.rpartition("/")
        if not _C_IDENTIFIER.match(name) or len(name) > 32:
            return f"{name!r} must be a C identifier of at most 32 characters, as DRA requires"
        if domain and not _DNS_SUBDOMAIN.match(domain):
            return f"{domain!r} is not a DNS subdomain such as gpu.nvidia.com"
        if not domain and not self.driver:
            return f"{key!r} names no domain: write e.g. gpu.nvidia.com/{key}, or set driver"
        return None

    def qualified(self, key: str) -> tuple[str, str]:
        """The (domain, name) an attribute or capacity key stands for in DRA's shape."""
        return qualify(self.driver, key)


def qualify(driver: str, key: str) -> tuple[str, str]:
    """DRA's rule: `domain/name` is in that domain, a bare `name` in the driver's."""
    domain, _, name = key.rpartition("/")
    return (domain or driver), name


class PoolSpec(meta.Model):
    """A group of identical nodes in one cluster, and what each node holds."""

    cluster: meta.DnsLabel
    """Name of the Cluster the nodes belong to."""
    nodeCount: int = Field(1, ge=0)
    """How many nodes the pool has."""
    devicesPerNode: list[DeviceGroup] = Field(default_factory=list)
    """Devices on each node, one entry per kind of device; empty for a CPU-only pool."""
    cpu: values.Quantity | None = None
    """CPU cores each node offers to replicas, e.g. 32; unset means not accounted."""
    memory: values.Quantity | None = None
    """Memory each node offers to replicas, e.g. 256Gi; unset means not accounted."""
    pricePerHour: values.Price = 0.0
    """What one node costs per hour, in US dollars; the cheapest placement strategy reads it."""
    spot: bool = False
    """True when nodes may be reclaimed by the provider at short notice."""

    @model_validator(mode="after")
    def _unique_group_names(self) -> PoolSpec:
        seen: set[str] = set()
        for i, group in enumerate(self.devicesPerNode):
            if group.name in seen:
                message = f"device group {group.name!r} is listed twice"
                raise errors.field_error("devicesPerNode", i, "name", message=message)
            seen.add(group.name)
        return self


class NodeAllocation(meta.Model):
    """What is placed on one node of a pool."""

    index: int = Field(ge=0)
    """The node's index in the pool, 0 to nodeCount-1."""
    devices: dict[str, list[int]] = Field(default_factory=dict)
    """Allocated device indexes per device group name, e.g. gpu: [0, 1]."""
    replicas: list[str] = Field(default_factory=list)
    """Replicas placed on the node, as namespace/name."""
    cpu: values.Quantity = "0"
    """CPU given to the replicas on the node, summed from their requests; the pool's cpu is
    the most it may reach."""
    memory: values.Quantity = "0"
    """Memory given to the replicas on the node, summed from their requests; the pool's memory
    is the most it may reach."""


class PoolStatus(meta.Status):
    """Allocation bookkeeping, kept by the scheduler so that no pool is ever overcommitted."""

    nodes: list[NodeAllocation] = Field(default_factory=list)
    """Per-node allocations; nodes with nothing placed are left out."""
    freeNodes: int = Field(0, ge=0)
    """Nodes with nothing placed on them."""
    readyNodes: int = Field(0, ge=0)
    """Nodes the agent reports as usable."""


class Pool(meta.Resource[PoolSpec, PoolStatus]):
    """A group of identical nodes in a cluster: devices per node, their attributes, and price."""

    KIND: ClassVar[str] = "Pool"
    NAMESPACED: ClassVar[bool] = False

    kind: Literal["Pool"] = "Pool"
    """Always Pool."""
    spec: PoolSpec
    """The cluster, node count, devices per node and price."""
    status: PoolStatus = Field(default_factory=PoolStatus)
    """Allocations per node, written by the scheduler."""


# --- ModelCache ----------------------------------------------------------------------------

CachePhase = Literal["Pending", "Downloading", "Ready", "Failed"]


class ModelCacheSpec(meta.Model):
    """Which model version to stage, and on which clusters."""

    model: meta.DnsLabel
    """Name of the Model whose weights to stage."""
    modelNamespace: meta.DnsLabel = "default"
    """Namespace of that Model (a ModelCache is fleet-scoped, a Model is not)."""
    modelVersion: models.VersionName | None = None
    """Version to stage; unset stages the version deployments resolve to by default."""
    clusterSelector: selectors.LabelSelector = Field(default_factory=selectors.LabelSelector)
    """Clusters to stage on, by their labels; the empty selector picks every cluster."""


class ClusterCache(meta.Model):
    """Staging progress on one cluster."""

    cluster: meta.DnsLabel
    """Name of the cluster."""
    phase: CachePhase = "Pending"
    """Pending, Downloading, Ready or Failed."""
    path: str | None = None
    """Where the weights lie on the cluster once Ready."""
    bytesDone: int = Field(0, ge=0)
    """Bytes downloaded so far."""
    bytesTotal: int | None = None
    """Size of the weights, once known."""
    message: str = ""
    """Why the staging failed, for a Failed phase."""


class ModelCacheStatus(meta.Status):
    """Staging progress per selected cluster."""

    clusters: list[ClusterCache] = Field(default_factory=list)
    """One entry per selected cluster."""
    readyClusters: int = Field(0, ge=0)
    """How many selected clusters hold the weights."""


class ModelCache(meta.Resource[ModelCacheSpec, ModelCacheStatus]):
    """Stages a model version's weights on clusters once, so replicas load them locally."""

    KIND: ClassVar[str] = "ModelCache"
    NAMESPACED: ClassVar[bool] = False

    kind: Literal["ModelCache"] = "ModelCache"
    """Always ModelCache."""
    spec: ModelCacheSpec
    """The model version to stage and the clusters to stage it on."""
    status: ModelCacheStatus = Field(default_factory=ModelCacheStatus)
    """Progress per cluster, written by the agents."""
