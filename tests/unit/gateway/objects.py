"""Raw objects as the watches deliver them, and tables built from them, for gateway tests."""

from __future__ import annotations

import hashlib
from typing import Any

from inferplane.gateway import table

Object = dict[str, Any]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def service(name: str, routes: list[Object], *, namespace: str = "default", **spec: Any) -> Object:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"routes": routes, **spec},
    }


def endpoint(
    name: str,
    deployment: str | None = None,
    *,
    url: str = "http://10.0.0.1:8000",
    ready: bool = True,
    namespace: str = "default",
    **spec: Any,
) -> Object:
    body: Object = {"url": url, **spec}
    if deployment is not None:
        body["deployment"] = deployment
    if not body.get("external"):
        body["replica"] = name
    return {
        "kind": "Endpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
        "status": {"ready": ready},
    }


def api_key(name: str, token: str, *, namespace: str = "default", **spec: Any) -> Object:
    return {
        "kind": "ApiKey",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"tokenHash": token_hash(token), **spec},
    }


def quota(name: str, *, namespace: str = "default", **spec: Any) -> Object:
    return {"kind": "Quota", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def objects_of(*items: Object) -> table.Objects:
    objects = table.Objects()
    for kind in table.KINDS:
        objects.apply(kind, "RESYNC", {"items": [o for o in items if o["kind"] == kind]})
    return objects


def table_of(*items: Object) -> table.Table:
    return table.build(objects_of(*items))
