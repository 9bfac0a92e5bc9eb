"""The `reveal` subresource of Secrets: values, to the identities that route with them.

Values are never part of a Secret's get, list or watch. A gateway asks for them here, and
receives only the keys that some Endpoint in the Secret's namespace references: a tenant
cannot make a gateway read a Secret of another namespace, and nobody else reads them at all.

An engine token (type inferplane.dev/engine-token, in inferplane-system) goes to the two
identities that use it, whatever references it: the agent of its replica's cluster, which
starts the engine with it, and gateways, which send it with every request to that engine.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inferplane.api import registry
from inferplane.api import secrets as api_secrets
from inferplane.api.meta import API_VERSION
from inferplane.control import auth, errors, resources
from inferplane.control import secrets as control_secrets
from inferplane.store import base as store_base

Object = dict[str, Any]


def _may_reveal(principal: auth.Principal) -> bool:
    return principal.gateway or principal.fleet_admin


def may_reveal_engine_token(principal: auth.Principal, replica: Object | None) -> bool:
    """Whether `principal` receives the engine token of `replica` (None: it is gone): a
    gateway, the agent of the replica's cluster, and a fleet admin (who may do anything)."""
    if principal.gateway or principal.fleet_admin:
        return True
    cluster = ((replica or {}).get("spec") or {}).get("cluster")
    return principal.agent and cluster is not None and principal.cluster == cluster


async def reveal(request: Request, namespace: str, name: str) -> Response:
    principal = resources.principal_of(request)
    agent_here = principal.agent and namespace == api_secrets.ENGINE_TOKEN_NAMESPACE
    if not (_may_reveal(principal) or agent_here):
        raise errors.forbidden(f"{principal} cannot reveal secrets: only gateways receive values")
    plane = resources.plane_of(request)
    info = registry.lookup("Secret")
    obj: Object = await resources._live(plane, info, namespace, name)
    if _is_engine_token(obj):
        return _answer(obj, await _engine_token(request, principal, obj))
    if not _may_reveal(principal):
        raise errors.forbidden(f"{principal} receives only the engine tokens of its replicas")
    endpoints, _ = await plane.read(plane.store.list, "Endpoint", namespace)
    wanted = control_secrets.referenced_keys(endpoints, name)
    values = control_secrets.reveal(plane.secretbox, obj)
    return _answer(obj, {key: value for key, value in values.items() if key in wanted})


def _is_engine_token(obj: Object) -> bool:
    spec = obj.get("spec") or {}
    namespace = obj["metadata"].get("namespace")
    return (
        spec.get("type") == api_secrets.ENGINE_TOKEN
        and namespace == api_secrets.ENGINE_TOKEN_NAMESPACE
    )


async def _engine_token(request: Request, principal: auth.Principal, obj: Object) -> dict[str, str]:
    replica = await _replica_of(request, obj)
    if not may_reveal_engine_token(principal, replica):
        raise errors.forbidden(f"{principal} receives only the engine tokens of its replicas")
    return control_secrets.reveal(resources.plane_of(request).secretbox, obj)


async def _replica_of(request: Request, secret: Object) -> Object | None:
    """The replica an engine token belongs to (its labels, and the uid in its name); None when
    it is gone, or was made again under the same name."""
    labels = secret["metadata"].get("labels") or {}
    namespace = labels.get(api_secrets.REPLICA_NAMESPACE_LABEL)
    name = labels.get(api_secrets.REPLICA_NAME_LABEL)
    if not namespace or not name:
        return None
    plane = resources.plane_of(request)
    try:
        replica: Object = await plane.read(plane.store.get, "Replica", namespace, name)
    except store_base.NotFoundError:
        return None
    uid = api_secrets.replica_uid_of(secret["metadata"]["name"])
    return replica if replica["metadata"].get("uid") == uid else None


def _answer(obj: Object, data: dict[str, str]) -> JSONResponse:
    meta = obj["metadata"]
    return JSONResponse(
        {
            "apiVersion": API_VERSION,
            "kind": "SecretValues",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "resourceVersion": meta["resourceVersion"],
            },
            "data": data,
        }
    )


def router() -> APIRouter:
    api = APIRouter(prefix=resources.PREFIX, tags=["secrets"])
    api.add_api_route("/namespaces/{namespace}/secrets/{name}/reveal", reveal, methods=["GET"])
    return api
