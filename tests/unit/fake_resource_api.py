"""A fake of the resource API (docs/reference/resource-api.md) behind an httpx.MockTransport.

It keeps objects in a dict and answers as the control plane does, for the parts the client, the
CLI and the agent use: CRUD, merge patch (of objects and of their status), scale, equality
selectors, dry run, Status errors, bearer auth and watch (replaying the events a test queued).
It is a fake, not a second server: admission is reduced to one rule (spec.replicas >= 0) so
tests can provoke a 422 with causes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

from inferplane.api import registry

PREFIX = "/apis/inferplane.dev/v1"
TOKEN = "fake-token"
SERVER = "http://fake-control-plane"
Object = dict[str, Any]


def status_body(code: int, reason: str, message: str, causes: list[Object] | None = None) -> Object:
    details: Object = {"causes": causes} if causes else {}
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": details,
    }


class Refused(Exception):
    def __init__(self, code: int, reason: str, message: str, causes: list[Object] | None = None):
        super().__init__(message)
        self.body = status_body(code, reason, message, causes)


@dataclass(frozen=True)
class Route:
    info: registry.KindInfo
    namespace: str | None
    name: str | None
    subresource: str | None


@dataclass
class FakeResourceApi:
    """The fake server's state; ``transport`` is what a Client takes."""

    token: str | None = TOKEN
    objects: dict[tuple[str, str, str], Object] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    watch_lines: list[Object] = field(default_factory=list)
    """What the first watch streams, one event per line, then the stream ends."""
    watches: int = 0
    """Watch requests answered. A client that follows a kind reconnects when a stream ends;
    the fake answers a second watch as the user would end it, with Ctrl-C."""
    version: int = 100
    revealed: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """What GET .../secrets/NAME/reveal answers, by (namespace, name)."""

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add(self, obj: Object) -> Object:
        """Store an object as if created earlier; fills the server-managed metadata."""
        stored = self._stamped(copy.deepcopy(obj), generation=1)
        if registry.lookup(stored["kind"]).namespaced:
            stored["metadata"].setdefault("namespace", "default")
        self.objects[self._key_of(stored)] = stored
        return stored

    def find(self, kind: str, name: str, namespace: str = "default") -> Object | None:
        info = registry.lookup(kind)
        return self.objects.get((info.kind, namespace if info.namespaced else "", name))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        try:
            self._authenticate(request)
            return self._dispatch(request, self._route(request.url.path))
        except Refused as exc:
            return httpx.Response(exc.body["code"], json=exc.body)

    # -- routing -------------------------------------------------------------------------------

    def _authenticate(self, request: httpx.Request) -> None:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            raise Refused(401, "Unauthorized", "missing or unknown bearer token")

    def _route(self, path: str) -> Route:
        if not path.startswith(PREFIX + "/"):
            raise Refused(404, "NotFound", f"no route {path}")
        parts = path[len(PREFIX) + 1 :].split("/")
        namespace = None
        if parts[0] == "namespaces":
            namespace, parts = parts[1], parts[2:]
        try:
            info = registry.by_plural(parts[0])
        except registry.UnknownKindError as exc:
            raise Refused(404, "NotFound", str(exc)) from exc
        name = parts[1] if len(parts) > 1 else None
        subresource = parts[2] if len(parts) > 2 else None
        return Route(info, namespace, name, subresource)

    def _dispatch(self, request: httpx.Request, route: Route) -> httpx.Response:
        params = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        dry_run = params.get("dryRun") == "All"
        method = request.method
        if route.name is None:
            if method == "POST":
                return httpx.Response(201, json=self._create(route, _body(request), dry_run))
            return self._list(route, params)
        if route.subresource == "reveal" and method == "GET":
            return httpx.Response(200, json=self._reveal(route))
        if route.subresource == "scale":
            return httpx.Response(200, json=self._scale(route, request))
        if route.subresource == "status" and method == "PATCH":
            return httpx.Response(200, json=self._patch_status(route, request))
        if method == "GET":
            return httpx.Response(200, json=self._get(route))
        if method == "PUT":
            return httpx.Response(200, json=self._replace(route, _body(request), dry_run))
        if method == "PATCH":
            return httpx.Response(200, json=self._patch(route, request, dry_run))
        if method == "DELETE":
            return httpx.Response(200, json=self._delete(route, dry_run))
        raise Refused(405, "MethodNotAllowed", method)

    # -- verbs ---------------------------------------------------------------------------------

    def _list(self, route: Route, params: dict[str, str]) -> httpx.Response:
        if params.get("watch") == "true":
            self.watches += 1
            if self.watches > 1:
                raise KeyboardInterrupt
            lines = "".join(json.dumps(event) + "\n" for event in self.watch_lines)
            headers = {"content-type": "application/x-ndjson"}
            return httpx.Response(200, content=lines.encode(), headers=headers)
        items = [
            obj
            for (kind, namespace, _), obj in sorted(self.objects.items())
            if kind == route.info.kind
            and (route.namespace is None or namespace == route.namespace)
            and _matches(obj, params.get("labelSelector"), params.get("fieldSelector"))
        ]
        body = {
            "apiVersion": "inferplane.dev/v1",
            "kind": f"{route.info.kind}List",
            "metadata": {"resourceVersion": str(self.version)},
            "items": items,
        }
        return httpx.Response(200, json=body)

    def _reveal(self, route: Route) -> Object:
        data = self.revealed.get((route.namespace or "", route.name or ""))
        if data is None:
            raise Refused(404, "NotFound", f'secrets "{route.name}" not found')
        return {"kind": "SecretValues", "metadata": {"name": route.name}, "data": data}

    def _get(self, route: Route) -> Object:
        key = self._key(route)
        if key not in self.objects:
            raise Refused(404, "NotFound", f'{route.info.plural} "{route.name}" not found')
        return self.objects[key]

    def _create(self, route: Route, body: Object, dry_run: bool) -> Object:
        _admit(body)
        key = (route.info.kind, route.namespace or "", body["metadata"]["name"])
        if key in self.objects:
            message = f'{route.info.plural} "{key[2]}" already exists'
            raise Refused(409, "AlreadyExists", message)
        stored = self._stamped(body, generation=1)
        if not dry_run:
            self.objects[key] = stored
        return stored

    def _replace(self, route: Route, body: Object, dry_run: bool) -> Object:
        live = self._get(route)
        sent = body.get("metadata", {}).get("resourceVersion")
        if sent and sent != live["metadata"]["resourceVersion"]:
            raise Refused(409, "Conflict", "the object has been modified")
        _admit(body)
        generation = live["metadata"]["generation"]
        if body.get("spec") != live.get("spec"):
            generation += 1
        meta = {**live["metadata"], **body.get("metadata", {})}
        changed = meta != live["metadata"] or generation != live["metadata"]["generation"]
        if not changed and body.get("spec") == live.get("spec"):
            return live
        stored = self._stamped(
            {**body, "metadata": meta, "status": live.get("status", {})}, generation
        )
        if not dry_run:
            self.objects[self._key(route)] = stored
        return stored

    def _patch(self, route: Route, request: httpx.Request, dry_run: bool) -> Object:
        if request.headers.get("content-type") != "application/merge-patch+json":
            raise Refused(415, "UnsupportedMediaType", "use application/merge-patch+json")
        live = self._get(route)
        merged = merge_patch(live, _body(request))
        return self._replace(route, merged, dry_run)

    def _patch_status(self, route: Route, request: httpx.Request) -> Object:
        """A merge patch of the status subresource: only `status` changes."""
        live = self._get(route)
        status = merge_patch(live.get("status", {}), _body(request).get("status", {}))
        stored = self._stamped({**live, "status": status}, live["metadata"]["generation"])
        self.objects[self._key(route)] = stored
        return stored

    def _delete(self, route: Route, dry_run: bool) -> Object:
        live = self._get(route)
        if not dry_run:
            del self.objects[self._key(route)]
        return live

    def _scale(self, route: Route, request: httpx.Request) -> Object:
        if not route.info.has_scale:
            raise Refused(404, "NotFound", f"{route.info.plural} have no scale subresource")
        live = self._get(route)
        if request.method == "PATCH":
            replicas = _body(request)["spec"]["replicas"]
            live = self._replace(route, merge_patch(live, {"spec": {"replicas": replicas}}), False)
        return {
            "apiVersion": "inferplane.dev/v1",
            "kind": "Scale",
            "metadata": {"name": route.name, "namespace": route.namespace},
            "spec": {"replicas": live["spec"].get("replicas", 0)},
            "status": {"replicas": live.get("status", {}).get("replicas", 0)},
        }

    # -- helpers -------------------------------------------------------------------------------

    def _key(self, route: Route) -> tuple[str, str, str]:
        return (route.info.kind, route.namespace or "", route.name or "")

    def _key_of(self, obj: Object) -> tuple[str, str, str]:
        meta = obj["metadata"]
        return (obj["kind"], meta.get("namespace") or "", meta["name"])

    def _stamped(self, obj: Object, generation: int) -> Object:
        self.version += 1
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        meta["resourceVersion"] = str(self.version)
        meta["generation"] = generation
        obj.setdefault("status", {})
        return obj


def _body(request: httpx.Request) -> Object:
    try:
        body: Object = json.loads(request.content)
    except ValueError as exc:
        raise Refused(400, "BadRequest", "malformed JSON") from exc
    return body


def _admit(obj: Object) -> None:
    replicas = obj.get("spec", {}).get("replicas", 0)
    if isinstance(replicas, int) and replicas < 0:
        message = "Input should be greater than or equal to 0"
        name = obj["metadata"]["name"]
        raise Refused(
            422,
            "Invalid",
            f'{obj["kind"]}.inferplane.dev "{name}" is invalid: spec.replicas: {message}',
            [{"field": "spec.replicas", "reason": "FieldValueInvalid", "message": message}],
        )


def _matches(obj: Object, labels: str | None, fields: str | None) -> bool:
    """Equality terms only (k=v, comma-separated): enough for what the CLI sends."""
    for term in (labels or "").split(","):
        key, _, value = term.partition("=")
        if term and obj["metadata"].get("labels", {}).get(key) != value:
            return False
    for term in (fields or "").split(","):
        path, _, value = term.partition("=")
        if term and str(_dig(obj, path)) != value:
            return False
    return True


def _dig(obj: Any, path: str) -> Any:
    for key in path.split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def deployment(
    name: str, *, replicas: int = 1, namespace: str | None = None, **meta: Any
) -> Object:
    """A Deployment manifest as a user writes it."""
    metadata: Object = {"name": name, **meta}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {"model": "chat-model", "replicas": replicas},
    }
