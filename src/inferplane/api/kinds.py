"""Registers every kind with the registry; importing this module is what makes kinds known."""

from __future__ import annotations

from inferplane.api import (
    apikeys,
    deployments,
    events,
    fleet,
    models,
    registry,
    replicas,
    secrets,
    services,
)
from inferplane.api.registry import KindInfo

CLUSTER = registry.register(
    KindInfo("Cluster", "clusters", fleet.Cluster, namespaced=False, short_names=("cl",))
)
POOL = registry.register(
    KindInfo("Pool", "pools", fleet.Pool, namespaced=False, short_names=("pl",))
)
MODEL_CACHE = registry.register(
    KindInfo("ModelCache", "modelcaches", fleet.ModelCache, namespaced=False, short_names=("mc",))
)
MODEL = registry.register(KindInfo("Model", "models", models.Model, short_names=("mdl",)))
DEPLOYMENT = registry.register(
    KindInfo(
        "Deployment",
        "deployments",
        deployments.Deployment,
        short_names=("deploy",),
        has_scale=True,
    )
)
REPLICA = registry.register(KindInfo("Replica", "replicas", replicas.Replica, short_names=("rep",)))
SERVICE = registry.register(KindInfo("Service", "services", services.Service, short_names=("svc",)))
ENDPOINT = registry.register(
    KindInfo("Endpoint", "endpoints", services.Endpoint, short_names=("ep",))
)
API_KEY = registry.register(KindInfo("ApiKey", "apikeys", apikeys.ApiKey, short_names=("key",)))
QUOTA = registry.register(KindInfo("Quota", "quotas", apikeys.Quota, short_names=("quota",)))
EVENT = registry.register(KindInfo("Event", "events", events.Event, short_names=("ev",)))
SECRET = registry.register(KindInfo("Secret", "secrets", secrets.Secret, short_names=("sec",)))
