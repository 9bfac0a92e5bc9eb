"""Joining the fleet: a join token exchanged for an agent key bound to one cluster.

As a kubelet's bootstrap token becomes a node credential, an operator hands a new plane a
join key (role join, inferplane-system, usually short-lived); the agent POSTs it here once
with its cluster's name and receives an agent key for that cluster, which it keeps. A join
key that names a cluster joins only that one. One that does not may join any cluster that has
no agent key yet: a second plane cannot take over a cluster that already has one (delete
`apikey agent-NAME` first, or use a join key bound to the cluster, which rotates the key).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from inferplane.api import meta
from inferplane.api.meta import API_VERSION
from inferplane.api.registry import lookup
from inferplane.control import admission, auth, errors, requests, resources
from inferplane.store import base as store_base

AGENT_KEY_PREFIX = "agent-"
_LABEL = pydantic.TypeAdapter(meta.DnsLabel)


def agent_key_name(cluster: str) -> str:
    return AGENT_KEY_PREFIX + cluster


async def join(request: Request) -> JSONResponse:
    principal = resources.principal_of(request)
    if principal.role != "join" and not principal.fleet_admin:
        raise errors.forbidden(f"{principal} is not a join key: only join keys may join")
    plane = resources.plane_of(request)
    body = await requests.read_json(request, limit=plane.settings.max_body_bytes)
    cluster = _cluster_of(body, principal)
    name = agent_key_name(cluster)
    info = lookup("ApiKey")
    try:
        live: dict[str, Any] | None = await plane.read(
            plane.store.get, "ApiKey", auth.SYSTEM_NAMESPACE, name
        )
    except store_base.NotFoundError:
        live = None
    if live is not None and principal.cluster != cluster and not principal.fleet_admin:
        raise errors.ApiProblem(
            409,
            "AlreadyExists",
            f"cluster {cluster!r} already has an agent key ({auth.SYSTEM_NAMESPACE}/{name}): "
            "delete it first, or join with a key bound to this cluster",
        )
    token = auth.new_token()
    obj = admission.validate(info, _agent_key(name, cluster, token, principal, live))
    write = plane.store.create if live is None else plane.store.update
    await plane.write(write, obj, plural=info.plural, name=name)
    return JSONResponse(
        {
            "apiVersion": API_VERSION,
            "kind": "AgentCredential",
            "cluster": cluster,
            "apiKey": f"{auth.SYSTEM_NAMESPACE}/{name}",
            "token": token,
        },
        status_code=201 if live is None else 200,
    )


def _cluster_of(body: Any, principal: auth.Principal) -> str:
    asked = body.get("cluster") if isinstance(body, dict) else None
    cluster = asked if asked is not None else principal.cluster
    if not isinstance(cluster, str):
        raise errors.invalid("AgentCredential", "", [errors.Cause("cluster", "Field required")])
    try:
        _LABEL.validate_python(cluster)
    except pydantic.ValidationError as exc:
        why = exc.errors()[0]["msg"]
        raise errors.invalid("AgentCredential", "", [errors.Cause("cluster", why)]) from exc
    if principal.cluster and cluster != principal.cluster:
        raise errors.forbidden(f"{principal} may join cluster {principal.cluster!r} only")
    return cluster


def _agent_key(
    name: str,
    cluster: str,
    token: str,
    principal: auth.Principal,
    live: dict[str, Any] | None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": auth.SYSTEM_NAMESPACE}
    if live is not None:
        metadata = {**live["metadata"]}
    when = datetime.now(UTC).isoformat(timespec="seconds")
    return {
        "apiVersion": API_VERSION,
        "kind": "ApiKey",
        "metadata": metadata,
        "spec": {
            "role": "agent",
            "cluster": cluster,
            "description": f"agent of cluster {cluster}, joined with {principal} at {when}",
            "tokenHash": auth.hash_token(token),
            "tokenPrefix": token[:12],
        },
    }


def router() -> APIRouter:
    api = APIRouter(prefix=resources.PREFIX, tags=["join"])
    api.add_api_route("/join", join, methods=["POST"], status_code=201)
    return api
