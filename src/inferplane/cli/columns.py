"""Which columns ``get`` shows for each kind, and how each cell is read from an object.

A column is a header and a function of (object, now): one entry per kind here is all a new kind
needs to print well. Kinds without an entry show NAME and AGE; events, as in kubectl, have no
NAME column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inferplane.api import registry
from inferplane.cli import limits, output

Object = dict[str, Any]
Cell = Callable[[Object, datetime], str]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell
    wide: bool = False
    """Shown only with ``-o wide``."""


def at(path: str, default: str = output.NONE) -> Cell:
    """The value at a dotted path (``spec.replicas``); lists are joined with commas."""

    def cell(obj: Object, now: datetime) -> str:
        value = dig(obj, path)
        if value is None or value == "" or value == []:
            return default
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    return cell


def age_at(path: str) -> Cell:
    return lambda obj, now: output.age(dig(obj, path), now)


def dig(obj: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _ratio(numerator: str, denominator: str) -> Cell:
    return lambda obj, now: f"{dig(obj, numerator) or 0}/{dig(obj, denominator) or 0}"


def _model_ref(obj: Object, now: datetime) -> str:
    model = dig(obj, "spec.model") or output.NONE
    version = dig(obj, "status.modelVersion") or dig(obj, "spec.modelVersion")
    return f"{model}:{version}" if version else str(model)


def _resolved_model(obj: Object, now: datetime) -> str:
    name, version = dig(obj, "spec.model.name"), dig(obj, "spec.model.version")
    return f"{name}:{version}" if name and version else str(name or output.NONE)


def _routes(obj: Object, now: datetime) -> str:
    """``chat-v1:90,chat-v2:10``: each route's target and weight."""
    routes = dig(obj, "spec.routes") or []
    targets = (f"{r.get('deployment') or r.get('endpoint')}:{r.get('weight', 1)}" for r in routes)
    return ",".join(targets) or output.NONE


def _devices(obj: Object, now: datetime) -> str:
    """Devices per node, e.g. ``8xH100``: the count and the model attribute (else group name)."""
    groups = dig(obj, "spec.devicesPerNode") or []
    return ",".join(_device_group(group) for group in groups) or output.NONE


def _device_group(group: Object) -> str:
    """``8xH100``: the model attribute, DRA's productName (any domain), else the group name."""
    attributes = group.get("attributes") or {}
    named = [v for k, v in attributes.items() if k.rpartition("/")[2] in ("model", "productName")]
    model = attributes.get("model") or (named[0] if named else group.get("name", "gpu"))
    return f"{group.get('count', 1)}x{model}"


def _versions(obj: Object, now: datetime) -> str:
    return ",".join(str(v.get("name")) for v in dig(obj, "spec.versions") or []) or output.NONE


def _cached(obj: Object, now: datetime) -> str:
    return f"{dig(obj, 'status.readyClusters') or 0}/{len(dig(obj, 'status.clusters') or [])}"


def _involved(obj: Object, now: datetime) -> str:
    kind = str(dig(obj, "spec.involvedObject.kind") or "")
    return f"{kind.lower()}/{dig(obj, 'spec.involvedObject.name') or ''}"


def _last_seen(obj: Object, now: datetime) -> str:
    return output.age(last_seen(obj), now)


def by_last_seen(event: Object) -> datetime:
    """Sort key: events in the order they last happened, undated ones first."""
    return output.parse_time(last_seen(event)) or datetime.min.replace(tzinfo=UTC)


def last_seen(event: Object) -> Any:
    """When an event last happened: its lastTimestamp, else when it was first recorded."""
    return (
        dig(event, "spec.lastTimestamp")
        or dig(event, "spec.firstTimestamp")
        or dig(event, "metadata.creationTimestamp")
    )


NAME = Column("NAME", at("metadata.name"))
AGE = Column("AGE", age_at("metadata.creationTimestamp"))
LIMITS = [
    Column("RPM", at("spec.rateLimits.requestsPerMinute", limits.UNLIMITED)),
    Column("TPM", at("spec.rateLimits.tokensPerMinute", limits.UNLIMITED)),
    Column("BUDGET", limits.budget_cell),
    Column("USED", limits.used_cell),
]
"""Rate limits, budget and usage: what ApiKeys and Quotas share."""

COLUMNS: dict[str, list[Column]] = {
    "Cluster": [
        NAME,
        Column("STATUS", at("status.phase")),
        Column("REGION", at("spec.region")),
        Column("RUNTIME", at("spec.runtime")),
        Column("PROVIDER", at("spec.provider"), wide=True),
        Column("CORDONED", at("spec.cordoned"), wide=True),
        Column("HEARTBEAT", age_at("status.lastHeartbeatTime"), wide=True),
        Column("AGENT", at("status.agentVersion"), wide=True),
        Column("RUNTIME-VERSION", at("status.runtimeVersion"), wide=True),
        AGE,
    ],
    "Pool": [
        NAME,
        Column("CLUSTER", at("spec.cluster")),
        Column("NODES", _ratio("status.readyNodes", "spec.nodeCount")),
        Column("DEVICES", _devices),
        Column("FREE", at("status.freeNodes", "0"), wide=True),
        Column("PRICE/H", at("spec.pricePerHour"), wide=True),
        Column("SPOT", at("spec.spot"), wide=True),
        AGE,
    ],
    "Model": [
        NAME,
        Column("TASK", at("spec.task")),
        Column("DEFAULT", at("status.defaultVersion")),
        Column("VERSIONS", _versions, wide=True),
        Column("PRODUCTION", at("status.productionVersions"), wide=True),
        AGE,
    ],
    "ModelCache": [
        NAME,
        Column("MODEL", at("spec.model")),
        Column("VERSION", at("spec.modelVersion")),
        Column("READY", _cached),
        AGE,
    ],
    "Deployment": [
        NAME,
        Column("READY", _ratio("status.readyReplicas", "spec.replicas")),
        Column("REPLICAS", at("status.replicas", "0")),
        Column("MODEL", _model_ref),
        Column("PHASE", at("status.phase"), wide=True),
        Column("UP-TO-DATE", at("status.updatedReplicas", "0"), wide=True),
        Column("ENGINE", at("spec.engine.recipe"), wide=True),
        Column("MODE", at("spec.serving.mode"), wide=True),
        AGE,
    ],
    "Replica": [
        NAME,
        Column("PHASE", at("status.phase")),
        Column("CLUSTER", at("spec.cluster")),
        Column("POOL", at("spec.pool")),
        Column("ENDPOINT", at("status.url")),
        Column("DEPLOYMENT", at("spec.deployment"), wide=True),
        Column("MODEL", _resolved_model, wide=True),
        Column("RESTARTS", at("status.restarts", "0"), wide=True),
        AGE,
    ],
    "Service": [
        NAME,
        Column("MODEL-NAME", at("spec.modelName")),
        Column("READY", at("status.readyEndpoints", "0")),
        Column("STRATEGY", at("spec.strategy")),
        Column("ROUTES", _routes, wide=True),
        Column("FALLBACK", at("spec.fallback"), wide=True),
        AGE,
    ],
    "Endpoint": [
        NAME,
        Column("URL", at("spec.url")),
        Column("READY", at("status.ready", "false")),
        Column("DEPLOYMENT", at("spec.deployment")),
        Column("CLUSTER", at("spec.cluster"), wide=True),
        Column("REGION", at("spec.region"), wide=True),
        Column("REPLICA", at("spec.replica"), wide=True),
        AGE,
    ],
    "ApiKey": [
        NAME,
        Column("ROLE", at("spec.role")),
        Column("PREFIX", at("spec.tokenPrefix")),
        *LIMITS,
        Column("LAST-USED", limits.last_used_cell),
        Column("EXPIRES", at("spec.expiresAt", "never"), wide=True),
        Column("DESCRIPTION", at("spec.description", ""), wide=True),
        AGE,
    ],
    "Quota": [NAME, *LIMITS, AGE],
    "Event": [
        Column("LAST SEEN", _last_seen),
        Column("TYPE", at("spec.type")),
        Column("REASON", at("spec.reason")),
        Column("OBJECT", _involved),
        Column("COUNT", at("spec.count", "1"), wide=True),
        Column("MESSAGE", at("spec.message", "")),
    ],
}


def for_kind(info: registry.KindInfo, *, wide: bool) -> list[Column]:
    return [c for c in COLUMNS.get(info.kind, [NAME, AGE]) if wide or not c.wide]


def headers(info: registry.KindInfo, *, wide: bool, all_namespaces: bool) -> list[str]:
    first = ["NAMESPACE"] if all_namespaces and info.namespaced else []
    return [*first, *(c.header for c in for_kind(info, wide=wide))]


def row(
    obj: Object, info: registry.KindInfo, *, wide: bool, all_namespaces: bool, now: datetime
) -> list[str]:
    first = [output.namespace_of(obj)] if all_namespaces and info.namespaced else []
    cells = [c.cell(obj, now) for c in for_kind(info, wide=wide)]
    return [*first, *cells]
