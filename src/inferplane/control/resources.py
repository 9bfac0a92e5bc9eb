"""The resource API's handlers: list, get, create, replace, merge-patch, delete, status, scale.

Routes are generic over `{plural}`; the registry says what each plural is. Every handler
authenticates, authorizes, admits, then makes one store call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from inferplane.api import deployments, registry
from inferplane.api.meta import API_VERSION
from inferplane.api.registry import KindInfo
from inferplane.control import (
    admission,
    auth,
    authguard,
    errors,
    paging,
    requests,
    scopes,
    views,
    watches,
)
from inferplane.control import secrets as control_secrets
from inferplane.control.plane import ControlPlane
from inferplane.store import base as store_base

PREFIX = "/apis/inferplane.dev/v1"
PATCH_RETRIES = 5


def plane_of(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.plane
    return plane


def kind_for(plural: str, namespace: str | None, *, listing: bool = False) -> KindInfo:
    """The kind a path names, refusing namespaced kinds on fleet paths and the reverse."""
    try:
        info = registry.by_plural(plural)
    except registry.UnknownKindError as exc:
        raise errors.not_found(f"the server has no resource {plural!r}") from exc
    if namespace is not None and not info.namespaced:
        raise errors.not_found(f"{plural} are fleet-scoped: use {PREFIX}/{plural}")
    if namespace is None and info.namespaced and not listing:
        raise errors.not_found(f"{plural} are namespaced: use {PREFIX}/namespaces/NS/{plural}")
    return info


def namespace_of(request: Request) -> str | None:
    namespace: str | None = request.path_params.get("namespace")
    return namespace


def principal_of(request: Request) -> auth.Principal:
    guard = authguard.of(request)
    guard.check(request)  # 429 before the token is looked at, while its address must wait
    try:
        principal = plane_of(request).authn.authenticate(request.headers.get("authorization"))
    except errors.ApiProblem:
        guard.failed(request)
        raise
    request.state.principal = principal
    return principal


def access(
    request: Request,
    verb: auth.Verb,
    plural: str,
    namespace: str | None,
    *,
    listing: bool = False,
    subresource: str | None = None,
) -> KindInfo:
    principal = principal_of(request)  # 401 before anything about the path is revealed
    info = kind_for(plural, namespace, listing=listing)
    scopes.authorize(principal, verb, info, namespace, subresource)
    return info


def who(request: Request) -> auth.Principal:
    """The principal `access` authenticated for this request."""
    principal: auth.Principal = request.state.principal
    return principal


async def list_objects(request: Request, plural: str) -> Response:
    namespace = namespace_of(request)
    verb: auth.Verb = "watch" if requests.bool_param(request, "watch") else "list"
    info = access(request, verb, plural, namespace, listing=True)
    plane = plane_of(request)
    selected = requests.filters(request)
    scopes.check_list(who(request), info, selected.fields)
    scope = namespace if namespace is not None else _list_scope(request, info)
    if verb == "watch":
        return await watches.stream(request, plane, info, scope, selected, views.of(who(request)))
    window = requests.page_window(request)
    items, version = await plane.read(plane.store.list, info.kind, scope)
    listed = paging.page([obj for obj in items if selected.matches(obj)], window, version=version)
    return JSONResponse(
        {
            "apiVersion": API_VERSION,
            "kind": f"{info.kind}List",
            "metadata": listed.metadata(),
            "items": [shown(request, obj) for obj in listed.items],
        }
    )


def _list_scope(request: Request, info: KindInfo) -> str | None:
    """Across namespaces a non-admin sees only its own namespace."""
    principal = who(request)
    if not info.namespaced or principal.fleet_admin or principal.agent or principal.gateway:
        return None
    return principal.namespace


async def get_object(request: Request, plural: str, name: str) -> Any:
    namespace = namespace_of(request)
    info = access(request, "get", plural, namespace)
    obj = await _live(plane_of(request), info, namespace, name)
    scopes.admit(who(request), "get", info, obj, None)
    return shown(request, obj)


def shown(request: Request, obj: dict[str, Any]) -> dict[str, Any]:
    """An object as this caller's responses show it (views.View)."""
    return views.of(who(request)).show(obj)


async def _live(
    plane: ControlPlane, info: KindInfo, namespace: str | None, name: str
) -> dict[str, Any]:
    try:
        return await plane.read(plane.store.get, info.kind, namespace or "", name)
    except store_base.NotFoundError as exc:
        raise errors.from_store(exc, plural=info.plural, name=name) from exc


async def create_object(request: Request, plural: str) -> Response:
    namespace = namespace_of(request)
    info = access(request, "create", plural, namespace)
    plane = plane_of(request)
    body = await requests.read_json(request, limit=plane.settings.max_body_bytes)
    _refuse_client_fields(info, body)
    obj, shown_once = admission.prepare_create(info, namespace, body)
    obj = _sealed(plane, info, obj, {})
    subject = await _subject(request, info, obj)
    scopes.admit(who(request), "create", info, None, obj, subject=subject)
    name = obj["metadata"]["name"]
    dry_run = requests.is_dry_run(request)
    stored = await plane.write(
        plane.store.create, obj, dry_run=dry_run, plural=info.plural, name=name
    )
    stored.setdefault("status", {}).update(shown_once)
    return JSONResponse(shown(request, stored), status_code=201)


async def _subject(request: Request, info: KindInfo, obj: dict[str, Any]) -> dict[str, Any] | None:
    """What an agent's Event is about, read from the store: an agent may write events only
    about its own cluster, pools and replicas."""
    if info.kind != "Event" or not who(request).agent:
        return None
    involved = (obj.get("spec") or {}).get("involvedObject") or {}
    try:
        subject_info = registry.lookup(str(involved.get("kind")))
    except registry.UnknownKindError:
        return None
    namespace = involved.get("namespace") if subject_info.namespaced else None
    try:
        return await _live(plane_of(request), subject_info, namespace, str(involved.get("name")))
    except errors.ApiProblem:
        return None


def _refuse_client_fields(info: KindInfo, body: Any) -> None:
    if info.kind == "Secret":
        control_secrets.refuse_client_fields(body)
    elif info.kind == "Endpoint":
        control_secrets.refuse_endpoint_fields(body)


def _sealed(
    plane: ControlPlane, info: KindInfo, obj: dict[str, Any], kept: dict[str, str]
) -> dict[str, Any]:
    """The object as the store may keep it: Secret values sealed, secret references checked."""
    if info.kind == "Secret":
        return control_secrets.seal(plane.secretbox, obj, kept)
    if info.kind == "Endpoint":
        control_secrets.check_reference(obj, plane.settings)
    return obj


async def replace_object(request: Request, plural: str, name: str) -> Any:
    namespace = namespace_of(request)
    info = access(request, "update", plural, namespace)
    plane = plane_of(request)
    body = await requests.read_json(request, limit=plane.settings.max_body_bytes)
    _refuse_client_fields(info, body)
    live = await _live(plane, info, namespace, name)
    obj = admission.prepare_replace(info, namespace, name, body, live)
    obj = _sealed(plane, info, obj, control_secrets.kept_on_replace(live, body))
    scopes.admit(who(request), "update", info, live, obj)
    dry_run = requests.is_dry_run(request)
    stored = await plane.write(plane.store.update, obj, dry_run=dry_run, plural=plural, name=name)
    return shown(request, stored)


async def patch_object(request: Request, plural: str, name: str) -> Any:
    namespace = namespace_of(request)
    info = access(request, "patch", plural, namespace)
    return await _patch(request, info, namespace, name, subresource=None)


async def _patch(
    request: Request, info: KindInfo, namespace: str | None, name: str, *, subresource: str | None
) -> dict[str, Any]:
    """Merge-patch the live object (or only its status)."""
    requests.check_patch_type(request)
    plane = plane_of(request)
    patch = await requests.read_json(request, limit=plane.settings.max_body_bytes)
    if not isinstance(patch, dict):
        raise errors.bad_request("a merge patch must be a JSON object")
    prepare = admission.prepare_status if subresource == "status" else admission.prepare_replace
    _refuse_client_fields(info, patch)

    def build(live: dict[str, Any]) -> dict[str, Any]:
        merged = admission.merge_patch(live, patch)
        obj = prepare(info, namespace, name, merged, live)
        obj = _sealed(plane, info, obj, control_secrets.kept_on_patch(live, patch))
        scopes.admit(who(request), "patch", info, live, obj)
        return obj

    pinned = bool(_sent_version(patch))
    return shown(request, await _update(request, info, namespace, name, build, pinned=pinned))


async def _update(
    request: Request,
    info: KindInfo,
    namespace: str | None,
    name: str,
    build: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    pinned: bool,
) -> dict[str, Any]:
    """Read, build the new object from the live one, write; when the caller did not pin a
    resourceVersion, a conflict with a concurrent writer is retried on a fresh read."""
    plane = plane_of(request)
    dry_run = requests.is_dry_run(request)
    for attempt in range(PATCH_RETRIES):
        live = await _live(plane, info, namespace, name)
        obj = build(live)
        if not pinned:
            obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        try:
            return await plane.write(
                plane.store.update, obj, dry_run=dry_run, plural=info.plural, name=name
            )
        except errors.ApiProblem as exc:
            if exc.reason != "Conflict" or pinned or attempt == PATCH_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


async def delete_object(request: Request, plural: str, name: str) -> Any:
    namespace = namespace_of(request)
    info = access(request, "delete", plural, namespace)
    plane = plane_of(request)
    if info.kind == "Endpoint" and not who(request).fleet_admin:
        # The one delete judged on the object: tenants delete external Endpoints only.
        scopes.admit(who(request), "delete", info, await _live(plane, info, namespace, name), None)
    deleted = await plane.write(
        plane.store.delete,
        info.kind,
        namespace or "",
        name,
        dry_run=requests.is_dry_run(request),
        plural=plural,
        name=name,
    )
    return shown(request, deleted)


async def get_status(request: Request, plural: str, name: str) -> Any:
    return await get_object(request, plural, name)


def _check_status_writable(info: KindInfo) -> None:
    if info.kind == "Secret":
        raise errors.ApiProblem(
            405, "MethodNotAllowed", "a Secret's status is written by the control plane only"
        )


async def replace_status(request: Request, plural: str, name: str) -> Any:
    namespace = namespace_of(request)
    info = access(request, "update", plural, namespace, subresource="status")
    _check_status_writable(info)
    plane = plane_of(request)
    body = await requests.read_json(request, limit=plane.settings.max_body_bytes)
    live = await _live(plane, info, namespace, name)
    obj = admission.prepare_status(info, namespace, name, body, live)
    scopes.admit(who(request), "update", info, live, obj)
    dry_run = requests.is_dry_run(request)
    stored = await plane.write(plane.store.update, obj, dry_run=dry_run, plural=plural, name=name)
    return shown(request, stored)


async def patch_status(request: Request, plural: str, name: str) -> Any:
    namespace = namespace_of(request)
    info = access(request, "patch", plural, namespace, subresource="status")
    _check_status_writable(info)
    return await _patch(request, info, namespace, name, subresource="status")


async def get_scale(request: Request, plural: str, name: str) -> Any:
    info = access(request, "get", plural, namespace_of(request))
    _check_scalable(info)
    return scale_view(await _live(plane_of(request), info, namespace_of(request), name))


async def replace_scale(request: Request, plural: str, name: str) -> Any:
    info = access(request, "update", plural, namespace_of(request), subresource="scale")
    return await _write_scale(request, info, name, patching=False)


async def patch_scale(request: Request, plural: str, name: str) -> Any:
    info = access(request, "patch", plural, namespace_of(request), subresource="scale")
    requests.check_patch_type(request)
    return await _write_scale(request, info, name, patching=True)


async def _write_scale(request: Request, info: KindInfo, name: str, *, patching: bool) -> Any:
    _check_scalable(info)
    plane = plane_of(request)
    namespace = namespace_of(request)
    body = await requests.read_json(request, limit=plane.settings.max_body_bytes)
    if not isinstance(body, dict):
        raise errors.bad_request("a Scale must be a JSON object")
    if not patching:
        _replicas_of(body)  # refuse a bad Scale before touching the store

    version = _sent_version(body)

    def build(live: dict[str, Any]) -> dict[str, Any]:
        if admission.autoscaled(live):
            raise errors.ApiProblem(
                409,
                "Conflict",
                f"{info.singular}/{name} is autoscaled: its replicas are the autoscaler's "
                "(within spec.autoscaling.minReplicas and maxReplicas). To set them by hand, "
                "set spec.autoscaling.enabled to false in its manifest and apply it",
            )
        scale = admission.merge_patch(scale_view(live), body) if patching else body
        obj = admission.merge_patch(live, {"spec": {"replicas": _replicas_of(scale)}})
        obj["metadata"]["resourceVersion"] = version  # None: unconditional, retried on conflict
        return admission.prepare_replace(info, namespace, name, obj, live)

    pinned = bool(version)
    return scale_view(await _update(request, info, namespace, name, build, pinned=pinned))


def _sent_version(body: dict[str, Any]) -> Any:
    """metadata.resourceVersion of a body, if its metadata is an object: admission judges the
    rest, and names a metadata that is not an object."""
    metadata = body.get("metadata")
    return metadata.get("resourceVersion") if isinstance(metadata, dict) else None


def _check_scalable(info: KindInfo) -> None:
    if not info.has_scale:
        raise errors.not_found(f"{info.plural} have no scale subresource")


def _replicas_of(body: Any) -> int:
    spec = body.get("spec") if isinstance(body, dict) else None
    replicas = spec.get("replicas") if isinstance(spec, dict) else None
    bound = deployments.MAX_REPLICAS
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= bound:
        cause = errors.Cause("spec.replicas", f"must be an integer from 0 to {bound}")
        raise errors.invalid("Scale", "", [cause])
    return replicas


def scale_view(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "Scale",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0)},
    }


NAMESPACE_PARAM = {
    "parameters": [
        {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
}


def router() -> APIRouter:
    """Namespaced routes first: `/namespaces/...` must never be read as a fleet plural."""
    api = APIRouter(prefix=PREFIX)
    routes: list[tuple[str, str, Any]] = [
        ("", "GET", list_objects),
        ("", "POST", create_object),
        ("/{name}", "GET", get_object),
        ("/{name}", "PUT", replace_object),
        ("/{name}", "PATCH", patch_object),
        ("/{name}", "DELETE", delete_object),
        ("/{name}/status", "GET", get_status),
        ("/{name}/status", "PUT", replace_status),
        ("/{name}/status", "PATCH", patch_status),
        ("/{name}/scale", "GET", get_scale),
        ("/{name}/scale", "PUT", replace_scale),
        ("/{name}/scale", "PATCH", patch_scale),
    ]
    for base, tag, extra in (
        ("/namespaces/{namespace}/{plural}", "namespaced resources", NAMESPACE_PARAM),
        ("/{plural}", "fleet resources and lists across namespaces", None),
    ):
        for suffix, method, handler in routes:
            api.add_api_route(
                base + suffix,
                handler,
                methods=[method],
                tags=[tag],
                openapi_extra=extra,
                name=f"{handler.__name__}{'_namespaced' if extra else ''}",
            )
    return api
