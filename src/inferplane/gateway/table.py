"""The routing table: what the gateway knows of Services, Endpoints, ApiKeys and Quotas.

`Objects` holds the raw objects as the watches deliver them (and as they are persisted); a
`Table` is an immutable, typed snapshot built from them, swapped in whole on every change, so
the request path reads plain dictionaries and never sees a half-applied update.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from inferplane import logs
from inferplane.api import apikeys, services
from inferplane.api import secrets as api_secrets
from inferplane.gateway.wire.upstream import Origin
from inferplane.policy import quotas

log = logging.getLogger("inferplane.gateway.table")

KINDS = ("Service", "Endpoint", "ApiKey", "Quota", "Secret")
"""What the gateway follows (Secrets without their values: those come from `reveal`)."""

Object = dict[str, Any]
M = TypeVar("M", bound=pydantic.BaseModel)
NsName = tuple[str, str]


@dataclass(frozen=True)
class ServiceEntry:
    namespace: str
    name: str
    model: str
    """The name clients send as `model`."""
    spec: services.ServiceSpec

    @functools.cached_property
    def label(self) -> str:
        """ "namespace/name": the `service` label of its metrics, built once, not per request."""
        return f"{self.namespace}/{self.name}"

    @functools.cached_property
    def session_header(self) -> bytes:
        """The request header that names a session, as the HTTP server's (lower-case) key."""
        return self.spec.sessionHeader.lower().encode("latin-1")


@dataclass(frozen=True)
class EndpointEntry:
    namespace: str
    name: str
    origin: Origin
    deployment: str | None
    external: bool
    region: str
    ready: bool
    upstream_model: str | None
    auth: bytes | None
    """The value of the Authorization header sent upstream: an external upstream's key, or a
    replica's engine token; never what the client sent."""


@dataclass(frozen=True)
class KeyEntry:
    namespace: str
    name: str
    limits: quotas.Limits
    expires_at: float | None
    role: apikeys.Role = "viewer"
    """The key's role in its namespace: only an `admin` may set engine scheduling hints."""

    @functools.cached_property
    def subject(self) -> str:
        return f"key {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Table:
    """A consistent snapshot; build a new one rather than changing this one."""

    services: dict[NsName, ServiceEntry] = field(default_factory=dict)
    """By (namespace, model name clients send)."""
    services_by_name: dict[NsName, ServiceEntry] = field(default_factory=dict)
    endpoints: dict[NsName, tuple[EndpointEntry, ...]] = field(default_factory=dict)
    """Ready or not, by (namespace, deployment)."""
    endpoints_by_name: dict[NsName, EndpointEntry] = field(default_factory=dict)
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    """By the SHA-256 hex of the token."""
    quotas: dict[str, tuple[tuple[str, quotas.Limits], ...]] = field(default_factory=dict)
    """Each namespace's Quotas as (subject, limits)."""
    usage: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    """What the control plane says each key and Quota used: (tokens, cost, period start)."""
    edges: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    """Gateway keys that name a cluster, by the SHA-256 hex of the token: the plane whose
    edge may carry that plane's traffic through a tunnel to this gateway, and when the key
    expires (epoch seconds; None never)."""

    def edge_of(self, token: str, now: float) -> str | None:
        """The cluster a tunnel authenticated by `token` may carry, or None."""
        found = self.edges.get(hashlib.sha256(token.encode()).hexdigest())
        if found is None or (found[1] is not None and found[1] <= now):
            return None
        return found[0]

    @functools.cached_property
    def engine_addresses(self) -> frozenset[tuple[str, int]]:
        """(host, port) of every replica's engine in the table, for an edge to check a target."""
        return frozenset(
            (e.origin.host, e.origin.port)
            for e in self.endpoints_by_name.values()
            if not e.external
        )

    @functools.cached_property
    def ready(self) -> frozenset[NsName]:
        """Deployments with at least one ready endpoint."""
        return frozenset(k for k, eps in self.endpoints.items() if any(e.ready for e in eps))

    def ready_deployments(self) -> frozenset[NsName]:
        return self.ready


class Objects:
    """The raw objects by kind and (namespace, name), as the watches last delivered them."""

    def __init__(self) -> None:
        self.by_kind: dict[str, dict[NsName, Object]] = {kind: {} for kind in KINDS}
        self.synced: set[str] = set()
        """Kinds whose current list arrived from the control plane in this process's life."""
        self.values: dict[NsName, tuple[str, dict[str, str]]] = {}
        """Revealed Secret values by Secret, with the resourceVersion they were read at; kept
        in memory only, never in the saved table."""
        self.allow_env: frozenset[str] = frozenset()
        """Environment variables an Endpoint may name (the operator's `--allow-secret-env`)."""
        self.allow_file: frozenset[str] = frozenset()
        """Files an Endpoint may name (`--allow-secret-file`)."""
        self.plane: str | None = None
        """A plane gateway's cluster (`--plane`): only that cluster's engines are routed."""

    def wanted_secrets(self) -> dict[NsName, str]:
        """Secrets that Endpoints reference and whose values are not read at their current
        version: (namespace, name) → resourceVersion. A replica's engine token never changes:
        it is wanted until it is held."""
        stale = {}
        for (ns, _), obj in self.by_kind["Endpoint"].items():
            spec = obj.get("spec") or {}
            token = engine_token_of(spec)
            if token is not None and token not in self.values:
                known = self.by_kind["Secret"].get(token) or {"metadata": {}}
                stale[token] = str(known["metadata"].get("resourceVersion", ""))
            ref = spec.get("apiKeySecretRef") or {}
            secret = self.by_kind["Secret"].get((ns, ref.get("name") or ""))
            if secret is None or _is_engine_token(secret):
                continue  # an engine token goes only to its replica's engine
            version = str(secret["metadata"].get("resourceVersion", ""))
            held = self.values.get((ns, ref["name"]))
            if held is None or held[0] != version:
                stale[(ns, ref["name"])] = version
        return stale

    def forget_unreferenced(self) -> None:
        """Drop the values no Endpoint references any more (a deleted replica's token)."""
        referenced = set()
        for (ns, _), obj in self.by_kind["Endpoint"].items():
            spec = obj.get("spec") or {}
            referenced.add(engine_token_of(spec))
            referenced.add((ns, (spec.get("apiKeySecretRef") or {}).get("name") or ""))
        for key in [k for k in self.values if k not in referenced]:
            del self.values[key]

    def apply(self, kind: str, event_type: str, obj: Object) -> bool:
        """Apply one watch event; True when something changed."""
        objects = self.by_kind[kind]
        if event_type == "RESYNC":
            fresh = {_key(o): o for o in obj.get("items") or []}
            changed = fresh != objects
            self.by_kind[kind] = fresh
            self.synced.add(kind)
            return changed
        if event_type in ("ADDED", "MODIFIED"):
            objects[_key(obj)] = obj
            return True
        if event_type == "DELETED":
            return objects.pop(_key(obj), None) is not None
        return False

    def to_json(self) -> dict[str, list[Object]]:
        return {kind: list(objs.values()) for kind, objs in self.by_kind.items()}

    def load(self, data: dict[str, list[Object]]) -> None:
        for kind in KINDS:
            self.by_kind[kind] = {_key(o): o for o in data.get(kind) or []}


def engine_token_of(spec: Object) -> NsName | None:
    """The engine-token Secret a replica's Endpoint names; None for an external upstream."""
    name = spec.get("engineTokenSecret")
    if spec.get("external") or not isinstance(name, str):
        return None
    return api_secrets.ENGINE_TOKEN_NAMESPACE, name


def _is_engine_token(secret: Object) -> bool:
    return (secret.get("spec") or {}).get("type") == api_secrets.ENGINE_TOKEN


def _key(obj: Object) -> NsName:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "default", meta["name"]


def build(objects: Objects) -> Table:
    """A snapshot of `objects`; objects that do not validate are skipped with a log line."""
    table = Table()
    for obj in objects.by_kind["Service"].values():
        if (service := _parse(services.Service, obj)) is not None:
            entry = ServiceEntry(
                service.metadata.namespace or "default",
                service.metadata.name,
                service.served_name(),
                service.spec,
            )
            table.services[(entry.namespace, entry.model)] = entry
            table.services_by_name[(entry.namespace, entry.name)] = entry
    grouped: dict[NsName, list[EndpointEntry]] = {}
    for obj in objects.by_kind["Endpoint"].values():
        if objects.plane is not None and not _in_plane(obj, objects.plane):
            continue
        if (endpoint := _endpoint(obj, objects)) is not None:
            table.endpoints_by_name[(endpoint.namespace, endpoint.name)] = endpoint
            if endpoint.deployment is not None and not endpoint.external:
                grouped.setdefault((endpoint.namespace, endpoint.deployment), []).append(endpoint)
    table.endpoints.update({k: tuple(sorted(v, key=lambda e: e.name)) for k, v in grouped.items()})
    for obj in objects.by_kind["ApiKey"].values():
        key = _parse(apikeys.ApiKey, obj)
        if (
            key is not None
            and key.spec.tokenHash
            and key.spec.role == "gateway"
            and key.spec.cluster
        ):
            table.edges[key.spec.tokenHash] = (key.spec.cluster, _epoch(key.spec.expiresAt))
        # The fleet's own identities (agents, gateways, join keys) are not inference clients.
        if key is not None and key.spec.tokenHash and key.spec.role not in apikeys.SYSTEM_ROLES:
            key_entry = KeyEntry(
                key.metadata.namespace or "default",
                key.metadata.name,
                quotas.Limits.of(key.spec.rateLimits, key.spec.budget),
                _epoch(key.spec.expiresAt),
                key.spec.role,
            )
            table.keys[key.spec.tokenHash] = key_entry
            _note_usage(table, key_entry.subject, key.status)
    shared: dict[str, list[tuple[str, quotas.Limits]]] = {}
    for obj in objects.by_kind["Quota"].values():
        if (quota := _parse(apikeys.Quota, obj)) is not None:
            ns = quota.metadata.namespace or "default"
            limits = quotas.Limits.of(quota.spec.rateLimits, quota.spec.budget)
            subject = f"quota {ns}/{quota.metadata.name}"
            shared.setdefault(ns, []).append((subject, limits))
            _note_usage(table, subject, quota.status)
    table.quotas.update({ns: tuple(v) for ns, v in shared.items()})
    return table


def _note_usage(
    table: Table, subject: str, status: apikeys.ApiKeyStatus | apikeys.QuotaStatus
) -> None:
    if status.periodStart is not None and (status.tokensUsed or status.costUsed):
        start = status.periodStart.timestamp()
        table.usage[subject] = (status.tokensUsed, status.costUsed, start)


def _parse(model: type[M], obj: Object) -> M | None:
    try:
        return model.model_validate(obj)
    except pydantic.ValidationError as error:
        name = (obj.get("metadata") or {}).get("name")
        logs.event(
            log,
            "object skipped",
            level=logging.WARNING,
            object=f"{obj.get('kind')}/{name}",
            error=str(error).splitlines()[0],
        )
        return None


def _in_plane(obj: Object, plane: str) -> bool:
    spec = obj.get("spec") or {}
    return not spec.get("external") and spec.get("cluster") == plane


def _endpoint(obj: Object, objects: Objects) -> EndpointEntry | None:
    endpoint = _parse(services.Endpoint, obj)
    if endpoint is None:
        return None
    spec = endpoint.spec
    ns, name = endpoint.metadata.namespace or "default", endpoint.metadata.name
    auth = None
    if spec.apiKeySecretRef is not None:
        secret = read_secret(spec.apiKeySecretRef, ns, objects)
        if secret is None:
            logs.event(
                log,
                "endpoint secret missing",
                level=logging.WARNING,
                endpoint=f"{ns}/{name}",
                ref=_describe(spec.apiKeySecretRef),
            )
            return None
        auth = b"Bearer " + secret.encode()
    token_secret = engine_token_of(obj.get("spec") or {})
    if token_secret is not None:
        held = objects.values.get(token_secret)
        token = held[1].get(api_secrets.ENGINE_TOKEN_KEY) if held else None
        if not token:
            # Not routed until its token is known: the engine would refuse every request.
            logs.event(log, "endpoint token pending", endpoint=f"{ns}/{name}")
            return None
        auth = b"Bearer " + token.encode()
    return EndpointEntry(
        ns,
        name,
        Origin.parse(spec.url, cluster="" if spec.external else spec.cluster or ""),
        spec.deployment,
        spec.external,
        spec.region,
        endpoint.status.ready,
        spec.upstreamModel,
        auth,
    )


def read_secret(ref: services.SecretRef, namespace: str, objects: Objects) -> str | None:
    """The secret a reference points at, or None when it is not there (or not allowed)."""
    if ref.name is not None:
        if namespace == api_secrets.ENGINE_TOKEN_NAMESPACE and api_secrets.replica_uid_of(ref.name):
            return None  # an engine token goes only to its replica's engine
        held = objects.values.get((namespace, ref.name))
        return held[1].get(ref.key or "") or None if held else None
    if ref.env is not None:
        return os.environ.get(ref.env) or None if ref.env in objects.allow_env else None
    if ref.file is None or ref.file not in objects.allow_file:
        return None
    try:
        return Path(ref.file).read_text().strip() or None
    except OSError:
        return None


def _describe(ref: services.SecretRef) -> str:
    if ref.name is not None:
        return f"secret {ref.name} key {ref.key}"
    return f"env {ref.env}" if ref.env else f"file {ref.file}"


def _epoch(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None
