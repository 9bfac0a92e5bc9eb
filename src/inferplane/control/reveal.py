"""The `reveal` subresource of Secrets: values, to the identities that route with them.

Values are never part of a Secret's get, list or watch. A gateway asks for them here, and
receives only the keys that some Endpoint in the Secret's namespace references: a tenant
cannot make a gateway read a Secret of another namespace, and nobody else reads them at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inferplane.api import registry
from inferplane.api.meta import API_VERSION
from inferplane.control import auth, errors, resources
from inferplane.control import secrets as control_secrets


def _may_reveal(principal: auth.Principal) -> bool:
    return principal.gateway or principal.fleet_admin


async def reveal(request: Request, namespace: str, name: str) -> Response:
    principal = resources.principal_of(request)
    if not _may_reveal(principal):
        raise errors.forbidden(f"{principal} cannot reveal secrets: only gateways receive values")
    plane = resources.plane_of(request)
    info = registry.lookup("Secret")
    obj: dict[str, Any] = await resources._live(plane, info, namespace, name)
    endpoints, _ = await plane.read(plane.store.list, "Endpoint", namespace)
    wanted = control_secrets.referenced_keys(endpoints, name)
    values = control_secrets.reveal(plane.secretbox, obj)
    return JSONResponse(
        {
            "apiVersion": API_VERSION,
            "kind": "SecretValues",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": obj["metadata"]["resourceVersion"],
            },
            "data": {key: value for key, value in values.items() if key in wanted},
        }
    )


def router() -> APIRouter:
    api = APIRouter(prefix=resources.PREFIX, tags=["secrets"])
    api.add_api_route("/namespaces/{namespace}/secrets/{name}/reveal", reveal, methods=["GET"])
    return api
