"""The table of kinds: each kind's names, scope and schema, written out once in `ALL`.

`registry` looks kinds up in this table; nothing registers itself. Adding a kind is one entry
here (and its schema module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferplane.api import (
    apikeys,
    deployments,
    events,
    fleet,
    meta,
    models,
    replicas,
    secrets,
    services,
)


@dataclass(frozen=True)
class KindInfo:
    """One kind: how URLs, the CLI and the store name it, its scope and its schema."""

    kind: str
    """CamelCase kind, e.g. Deployment."""
    plural: str
    """Lowercase plural used in URLs, e.g. deployments."""
    model: type[meta.Resource[Any, Any]]
    """The pydantic model of the whole object."""
    namespaced: bool = True
    """False for fleet-scoped kinds (Cluster, Pool, ModelCache)."""
    short_names: tuple[str, ...] = field(default=())
    """Abbreviations accepted by the CLI, e.g. deploy."""
    has_scale: bool = False
    """True when the kind serves the scale subresource (spec.replicas)."""

    @property
    def singular(self) -> str:
        return self.kind.lower()


CLUSTER = KindInfo("Cluster", "clusters", fleet.Cluster, namespaced=False, short_names=("cl",))
POOL = KindInfo("Pool", "pools", fleet.Pool, namespaced=False, short_names=("pl",))
MODEL_CACHE = KindInfo(
    "ModelCache", "modelcaches", fleet.ModelCache, namespaced=False, short_names=("mc",)
)
MODEL = KindInfo("Model", "models", models.Model, short_names=("mdl",))
DEPLOYMENT = KindInfo(
    "Deployment", "deployments", deployments.Deployment, short_names=("deploy",), has_scale=True
)
REPLICA = KindInfo("Replica", "replicas", replicas.Replica, short_names=("rep",))
SERVICE = KindInfo("Service", "services", services.Service, short_names=("svc",))
ENDPOINT = KindInfo("Endpoint", "endpoints", services.Endpoint, short_names=("ep",))
API_KEY = KindInfo("ApiKey", "apikeys", apikeys.ApiKey, short_names=("key",))
QUOTA = KindInfo("Quota", "quotas", apikeys.Quota, short_names=("quota",))
EVENT = KindInfo("Event", "events", events.Event, short_names=("ev",))
SECRET = KindInfo("Secret", "secrets", secrets.Secret, short_names=("sec",))

ALL: tuple[KindInfo, ...] = (
    CLUSTER,
    POOL,
    MODEL_CACHE,
    MODEL,
    DEPLOYMENT,
    REPLICA,
    SERVICE,
    ENDPOINT,
    API_KEY,
    QUOTA,
    EVENT,
    SECRET,
)
"""Every kind, in the order listings and the OpenAPI document show them."""
