"""A launch as Kubernetes objects: pure, no I/O, the same launch renders the same manifests.

A single-node replica is an `apps/v1` Deployment (one replica, Recreate) and a Service; a
gang (`launch.nodes > 1`) is a `leaderworkerset.x-k8s.io/v1` LeaderWorkerSet of that size
and a Service selecting its leader. Beside them: a Secret holding the engine token (the pod
reads it with secretKeyRef; it is never in the pod spec), and with `devices: dra` a
`resource.k8s.io/v1` ResourceClaim (a ResourceClaimTemplate for a gang: one claim per node).

What a pod needs beyond the Launch (its CPU, memory, devices, node selector, deployment) is
decided by `launches.launch_for` and carried in the launch's environment as `POD_ENV`, so
that it is part of the launch's fingerprint (a changed device request replaces the engine)
and a launch alone renders the whole replica. That variable is not passed to the engine.

Every string from the tenant (the engine's args and environment, the model path) is passed
as a literal: Kubernetes expands `$(VAR)` in a container's command, args and env values, so
each `$` is written `$$`, which it turns back into one `$`.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from inferplane.agent.runtime import base
from inferplane.agent.runtime.kubernetes import api, names
from inferplane.api import fleet

Manifest = dict[str, Any]

CONTAINER = "engine"
PORT_NAME = "http"
MODELS_PATH = "/models"
MODELS_VOLUME = "models"
SCRATCH_PATH = "/tmp"
SCRATCH_VOLUME = "scratch"
"""An emptyDir at /tmp, the engine's HOME unless it sets one: images written for root find a
writable home as uid 1000."""
CLAIM = "devices"
"""The pod's name for its DRA claim."""
TOKEN_KEY = "token"
TOKEN_ENV = "INFERPLANE_ENGINE_TOKEN"
"""The variable a token in the engine's command line is read from, as $(INFERPLANE_ENGINE_TOKEN):
the command holds the reference, the value comes from the Secret."""
POD_ENV = "INFERPLANE_POD"
"""Launch environment: the Pod facts, as JSON (see the module docstring)."""
USER_ID = 1000
"""The uid and gid engines run as: images must work as a non-root user."""
GRACE_SECONDS = 30
"""terminationGracePeriodSeconds of engine pods; `stop` deletes them with its own grace."""
PROBE_PERIOD = 5
MAX_STARTUP_FAILURES = 1_000_000

LWS_API_VERSION = api.LEADER_WORKER_SETS.api_version
LWS_WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"
"""The label LeaderWorkerSet puts on each pod: 0 for the leader."""


@dataclass(frozen=True)
class DeviceRequest:
    """One device request of the replica, per node."""

    name: str
    """The deployment's request name (a DNS label): the DRA request's name."""
    count: int
    selectors: tuple[str, ...] = ()
    """CEL expressions, passed to the DRA request as written."""


@dataclass(frozen=True)
class Pod:
    """What a pod of the replica needs that the launch does not say."""

    deployment: str = ""
    """The inferplane Deployment the replica belongs to (for its label)."""
    cpu: str | None = None
    memory: str | None = None
    limits: dict[str, int] = field(default_factory=dict)
    """Device-plugin resources per node, e.g. nvidia.com/gpu: 2."""
    requests: tuple[DeviceRequest, ...] = ()
    """The same devices as DRA requests."""
    node_selector: dict[str, str] = field(default_factory=dict)
    """Node labels that keep the pods on the replica's pool."""

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None) -> Pod:
        if not text:
            return cls()
        raw = json.loads(text)
        requests = tuple(
            DeviceRequest(str(r["name"]), int(r["count"]), tuple(r.get("selectors") or ()))
            for r in raw.get("requests") or ()
        )
        return cls(
            deployment=str(raw.get("deployment") or ""),
            cpu=raw.get("cpu"),
            memory=raw.get("memory"),
            limits={str(k): int(v) for k, v in (raw.get("limits") or {}).items()},
            requests=requests,
            node_selector={str(k): str(v) for k, v in (raw.get("node_selector") or {}).items()},
        )


@dataclass(frozen=True)
class Manifests:
    """Every object of one replica, in the order they are created."""

    secret: Manifest | None
    claim: Manifest | None
    service: Manifest
    workload: Manifest
    """The Deployment or LeaderWorkerSet."""

    def all(self) -> list[Manifest]:
        found = [self.secret, self.claim, self.service, self.workload]
        return [m for m in found if m is not None]


def literal(text: str) -> str:
    """`text` as Kubernetes passes it on unexpanded: every `$` doubled."""
    return text.replace("$", "$$")


def render(
    launch: base.Launch, settings: fleet.KubernetesRuntimeSpec, *, token: str | None = None
) -> Manifests:
    """The objects that run `launch` in `settings.namespace`; the Secret is rendered only
    with the token (it is not needed to compare or to replace the other objects)."""
    name = names.object_name(launch.name)
    pod = Pod.decode(launch.env.get(POD_ENV))
    gang = launch.nodes > 1
    metadata = _metadata(launch, name, pod, settings.namespace)
    claim = _claim(name, pod, settings, metadata, gang=gang) if _dra(settings, pod) else None
    template = _pod_template(launch, name, pod, settings, gang=gang)
    workload = (
        _leader_worker_set(launch, template, metadata)
        if gang
        else _deployment(name, template, metadata)
    )
    return Manifests(
        secret=_secret(name, token, metadata) if launch.needs_token and token else None,
        claim=claim,
        service=_service(launch, name, metadata, gang=gang),
        workload=workload,
    )


def port_of(launch: base.Launch) -> int:
    """The container port: the launch's (launches.launch_for always sets one)."""
    if launch.port is None:
        raise base.RuntimeFailure(f"{launch.name}: a launch for kubernetes names its port")
    return launch.port


def service_name(launch: base.Launch) -> str:
    name = names.object_name(launch.name)
    return names.leader_service(name) if launch.nodes > 1 else name


# --- metadata ------------------------------------------------------------------------------


def _metadata(launch: base.Launch, name: str, pod: Pod, namespace: str) -> Manifest:
    return {
        "name": name,
        "namespace": namespace,
        "labels": names.labels(launch.name, deployment=pod.deployment),
        "annotations": {
            names.REPLICA_NAME: launch.name,
            names.FINGERPRINT: launch.fingerprint(),
            names.PORT: str(port_of(launch)),
        },
    }


def _named(metadata: Manifest, name: str) -> Manifest:
    labels, annotations = dict(metadata["labels"]), dict(metadata["annotations"])
    return {**metadata, "name": name, "labels": labels, "annotations": annotations}


# --- the objects ---------------------------------------------------------------------------


def _secret(name: str, token: str, metadata: Manifest) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _named(metadata, name),
        "type": "Opaque",
        "stringData": {TOKEN_KEY: token},
    }


def _service(launch: base.Launch, name: str, metadata: Manifest, *, gang: bool) -> Manifest:
    selector = {names.INSTANCE: name}
    if gang:
        selector[LWS_WORKER_INDEX] = "0"
    port = port_of(launch)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _named(metadata, service_name(launch)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": PORT_NAME, "port": port, "targetPort": PORT_NAME,
                       "protocol": "TCP"}],
        },
    }  # fmt: skip


def _deployment(name: str, template: Manifest, metadata: Manifest) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _named(metadata, name),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {names.INSTANCE: name}},
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 2,
            "template": template,
        },
    }


def _leader_worker_set(launch: base.Launch, template: Manifest, metadata: Manifest) -> Manifest:
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": "LeaderWorkerSet",
        "metadata": _named(metadata, metadata["name"]),
        "spec": {
            "replicas": 1,
            "startupPolicy": "LeaderCreated",
            "leaderWorkerTemplate": {
                "size": launch.nodes,
                # A worker exits when its leader is lost: the gang restarts as one.
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": template,
                "workerTemplate": copy.deepcopy(template),
            },
        },
    }


def _dra(settings: fleet.KubernetesRuntimeSpec, pod: Pod) -> bool:
    return settings.devices == "dra" and bool(pod.requests)


def _claim(
    name: str, pod: Pod, settings: fleet.KubernetesRuntimeSpec, metadata: Manifest, *, gang: bool
) -> Manifest:
    requests = []
    for request in pod.requests:
        exactly: Manifest = {
            "deviceClassName": settings.deviceClassName,
            "allocationMode": "ExactCount",
            "count": request.count,
        }
        if request.selectors:
            exactly["selectors"] = [{"cel": {"expression": s}} for s in request.selectors]
        requests.append({"name": request.name, "exactly": exactly})
    spec = {"devices": {"requests": requests}}
    if gang:  # one claim per member: a claim's devices are on one node
        return {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": _named(metadata, name),
            "spec": {"metadata": {"labels": dict(metadata["labels"])}, "spec": spec},
        }
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": _named(metadata, name),
        "spec": spec,
    }


# --- the pod -------------------------------------------------------------------------------


def _pod_template(
    launch: base.Launch, name: str, pod: Pod, settings: fleet.KubernetesRuntimeSpec, *, gang: bool
) -> Manifest:
    labels = names.labels(launch.name, deployment=pod.deployment)
    spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "fsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(launch, pod, settings, gang=gang)],
        "volumes": [_models_volume(settings), {"name": SCRATCH_VOLUME, "emptyDir": {}}],
    }
    if pod.node_selector:
        spec["nodeSelector"] = dict(pod.node_selector)
    if gang:  # one member per node
        spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {names.INSTANCE: name}},
                     "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        }  # fmt: skip
    if _dra(settings, pod):
        source = "resourceClaimTemplateName" if gang else "resourceClaimName"
        spec["resourceClaims"] = [{"name": CLAIM, source: name}]
    annotations = {names.REPLICA_NAME: launch.name, names.FINGERPRINT: launch.fingerprint()}
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec}


def _models_volume(settings: fleet.KubernetesRuntimeSpec) -> Manifest:
    if settings.modelCacheClaim:
        return {"name": MODELS_VOLUME,
                "persistentVolumeClaim": {"claimName": settings.modelCacheClaim}}  # fmt: skip
    return {"name": MODELS_VOLUME, "emptyDir": {}}


def _container(
    launch: base.Launch, pod: Pod, settings: fleet.KubernetesRuntimeSpec, *, gang: bool
) -> Manifest:
    if not launch.image:
        raise base.RuntimeFailure(f"{launch.name}: a launch for kubernetes names its image")
    port = port_of(launch)

    def http() -> Manifest:
        return {"path": launch.health_path, "port": PORT_NAME}

    startup_failures = math.ceil(launch.startup_timeout / PROBE_PERIOD)
    return {
        "name": CONTAINER,
        "image": launch.image,
        "command": command(launch, port),
        "ports": [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}],
        "env": environment(launch, port, gang=gang),
        "resources": _resources(pod, settings),
        "startupProbe": {"httpGet": http(), "periodSeconds": PROBE_PERIOD, "timeoutSeconds": 3,
                         "failureThreshold": max(1, min(startup_failures, MAX_STARTUP_FAILURES))},
        "readinessProbe": {"httpGet": http(), "periodSeconds": PROBE_PERIOD, "timeoutSeconds": 3,
                           "failureThreshold": 3},
        "livenessProbe": {"httpGet": http(), "periodSeconds": 10, "timeoutSeconds": 5,
                          "failureThreshold": 3},
        "volumeMounts": [
            {"name": MODELS_VOLUME, "mountPath": MODELS_PATH},
            {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_PATH},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }  # fmt: skip


def command(launch: base.Launch, port: int) -> list[str]:
    """`launch.argv(port)`, as literals, with the token (a whole item) as a reference to the
    variable that holds it."""
    items = []
    for item in launch.command:
        if item == base.TOKEN:
            items.append(f"$({TOKEN_ENV})")
        else:
            items.append(literal(item.replace(base.PORT, str(port))))
    return items + [literal(arg) for arg in launch.args]


def environment(launch: base.Launch, port: int, *, gang: bool) -> list[Manifest]:
    """The launch's variables, sorted, as literals; the token's from the Secret."""
    name = names.object_name(launch.name)
    token = {"secretKeyRef": {"name": name, "key": TOKEN_KEY}}
    env: list[Manifest] = []
    for key in sorted(launch.env):
        value = launch.env[key]
        if key in (POD_ENV, TOKEN_ENV, base.GANG_LEADER_URL):
            continue
        if value == base.TOKEN:
            env.append({"name": key, "valueFrom": token})
        else:
            env.append({"name": key, "value": literal(value)})
    if base.TOKEN in launch.command:
        env.append({"name": TOKEN_ENV, "valueFrom": token})
    if gang:  # LeaderWorkerSet puts LWS_LEADER_ADDRESS first in every member's env
        url = f"http://$({base.GANG_LEADER_ADDRESS}):{port}"
        env.append({"name": base.GANG_LEADER_URL, "value": url})
    return env


def _resources(pod: Pod, settings: fleet.KubernetesRuntimeSpec) -> Manifest:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if pod.cpu:
        requests["cpu"] = pod.cpu
    if pod.memory:
        requests["memory"] = limits["memory"] = pod.memory
    resources: Manifest = {}
    if _dra(settings, pod):
        resources["claims"] = [{"name": CLAIM}]
    elif settings.devices == "device-plugin":
        limits.update({key: str(count) for key, count in sorted(pod.limits.items())})
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources
