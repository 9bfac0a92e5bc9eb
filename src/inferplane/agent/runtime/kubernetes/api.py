"""The one wrapper between this runtime and the Kubernetes API: typed, dict in, dict out.

It speaks REST through the official client's `ApiClient` (kubeconfig and in-cluster
configuration, TLS, bearer tokens and exec credential plugins are the client's), one path
scheme for every kind (core, apps, resource.k8s.io and the LeaderWorkerSet custom resource
alike), and JSON objects as plain dicts: no generated model classes between the manifests
`render` writes and what the server stores. A test puts a fake API server behind it
(tests/support/fake_kube.py), never a fake of this class.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import urllib3
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from inferplane.agent.runtime import base

Obj = dict[str, Any]
REQUEST_SECONDS = 15.0
"""How long one request (not a watch) may take."""


@dataclass(frozen=True)
class Kind:
    """One resource of the API, as its REST paths name it."""

    group: str
    """API group; '' for the core group (/api/v1)."""
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is needed")
            root += f"/namespaces/{namespace}"
        path = f"{root}/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if sub is not None:
            path += f"/{sub}"
        return path


DEPLOYMENTS = Kind("apps", "v1", "deployments", "Deployment")
LEADER_WORKER_SETS = Kind("leaderworkerset.x-k8s.io", "v1", "leaderworkersets", "LeaderWorkerSet")
PODS = Kind("", "v1", "pods", "Pod")
SERVICES = Kind("", "v1", "services", "Service")
SECRETS = Kind("", "v1", "secrets", "Secret")
RESOURCE_CLAIMS = Kind("resource.k8s.io", "v1", "resourceclaims", "ResourceClaim")
RESOURCE_CLAIM_TEMPLATES = Kind(
    "resource.k8s.io", "v1", "resourceclaimtemplates", "ResourceClaimTemplate"
)
NODES = Kind("", "v1", "nodes", "Node", namespaced=False)
KINDS = {
    kind.kind: kind
    for kind in (DEPLOYMENTS, LEADER_WORKER_SETS, PODS, SERVICES, SECRETS, RESOURCE_CLAIMS,
                 RESOURCE_CLAIM_TEMPLATES, NODES)
}  # fmt: skip
"""Every kind this runtime touches, by its `kind`."""


def kind_of(manifest: Obj) -> Kind:
    return KINDS[manifest["kind"]]


# --- errors --------------------------------------------------------------------------------


class ApiError(base.RuntimeFailure):
    """The API server answered with an error, or could not be reached (status 0)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    """404: no such object, or (for a whole kind) the API is not installed."""


class Conflict(ApiError):
    """409: the object exists already, or changed since it was read."""


class Gone(ApiError):
    """410: the resourceVersion a watch asked for is too old; list again."""


_ERRORS: dict[int, type[ApiError]] = {404: NotFound, 409: Conflict, 410: Gone}


def error_of(status: int, body: bytes | str) -> ApiError:
    """The error a failed response stands for, read from its Status object where it has one."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    message = str(parsed.get("message") or text[:300] or "no message")
    reason = str(parsed.get("reason") or "")
    code = parsed["code"] if isinstance(parsed.get("code"), int) else status
    return _ERRORS.get(code, ApiError)(code, reason, message)


# --- watch events --------------------------------------------------------------------------

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


@dataclass(frozen=True)
class Event:
    type: EventType
    object: Obj


def resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


# --- the client ----------------------------------------------------------------------------


class Api:
    """Requests to one API server, from any thread (the client's connection pool is
    thread-safe). Every method raises ApiError, or one of its subclasses."""

    def __init__(self, client: Any, *, timeout: float = REQUEST_SECONDS) -> None:
        """`client`: a kubernetes.client.ApiClient, configured."""
        self._client = client
        self._timeout = timeout
        self._streams: set[Any] = set()
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, *, kubeconfig: str | None = None, context: str | None = None) -> Api:
        """From `kubeconfig` (else $KUBECONFIG or ~/.kube/config) or, in a pod whose
        environment names no kubeconfig, from its service account."""
        in_pod = os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG")
        try:
            if kubeconfig is None and context is None and in_pod:
                configuration = kube_client.Configuration()
                kube_config.load_incluster_config(client_configuration=configuration)
                return cls(kube_client.ApiClient(configuration))
            client = kube_config.new_client_from_config(
                config_file=kubeconfig or os.environ.get("KUBECONFIG") or None,
                context=context,
                persist_config=False,
            )
        except (kube_config.ConfigException, OSError) as exc:
            raise ApiError(0, "", f"no usable Kubernetes configuration: {exc}") from exc
        return cls(client)

    def close(self) -> None:
        self.shutdown_streams()
        self._client.close()

    def server_version(self) -> str:
        """The API server's gitVersion, e.g. v1.34.1 (GET /version)."""
        return str(self._json("GET", "/version").get("gitVersion") or "")

    # -- objects ----------------------------------------------------------------------------

    def get(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        return self._json("GET", kind.path(namespace, name))

    def list(
        self, kind: Kind, namespace: str | None, *, selector: str = ""
    ) -> tuple[list[Obj], str]:
        """The items and the list's resourceVersion, to watch from."""
        query = {"labelSelector": selector} if selector else {}
        found = self._json("GET", kind.path(namespace), query=query)
        items = [_with_kind(item, kind) for item in found.get("items") or []]
        return items, resource_version(found)

    def create(
        self, namespace: str | None, manifest: Obj, *, dry_run: bool = False,
        kind: Kind | None = None,
    ) -> Obj:  # fmt: skip
        """POST; with `dry_run`, the server validates and admits the object without storing
        it (dryRun=All). `kind`: for a kind not in KINDS."""
        kind = kind or kind_of(manifest)
        query = {"dryRun": "All"} if dry_run else None
        return self._json("POST", kind.path(namespace), query=query, body=manifest)

    def replace(self, namespace: str | None, manifest: Obj) -> Obj:
        """PUT: the whole object, with the resourceVersion it was read at (Conflict when it
        changed since)."""
        kind = kind_of(manifest)
        name = manifest["metadata"]["name"]
        return self._json("PUT", kind.path(namespace, name), body=manifest)

    def patch(self, kind: Kind, namespace: str | None, name: str, patch: Obj) -> Obj:
        """A JSON merge patch (RFC 7386)."""
        return self._json(
            "PATCH",
            kind.path(namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        grace: float | None = None,
        propagation: Literal["Foreground", "Background", "Orphan"] | None = None,
    ) -> Obj | None:
        """The object as deletion left it (a deletionTimestamp while finalizers hold it), or
        None when it was gone already."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace is not None:
            options["gracePeriodSeconds"] = max(int(grace), 0)
        if propagation is not None:
            options["propagationPolicy"] = propagation
        try:
            return self._json("DELETE", kind.path(namespace, name), body=options)
        except NotFound:
            return None

    def log(
        self, namespace: str, pod: str, *, container: str, limit_bytes: int, previous: bool = False
    ) -> bytes:
        """The first `limit_bytes` of a container's log (pods/log)."""
        query = {"container": container, "limitBytes": str(max(limit_bytes, 1))}
        if previous:
            query["previous"] = "true"
        response = self._send("GET", PODS.path(namespace, pod, "log"), query=query, accept="*/*")
        return bytes(response.read())

    # -- watches ----------------------------------------------------------------------------

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        selector: str,
        resource_version: str,
        timeout: float,
    ) -> Iterator[Event]:
        """The events after `resource_version`, until the server ends the watch (after about
        `timeout` seconds) or `shutdown_streams` is called. An ERROR event is raised as its
        error: Gone when the version is too old."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(max(int(timeout), 1)),
        }
        if selector:
            query["labelSelector"] = selector
        response = self._send(
            "GET", kind.path(namespace), query=query, timeout=(self._timeout, timeout + 30.0)
        )
        raw = response.response
        with self._lock:
            self._streams.add(raw)
        try:
            for line in _lines(raw):
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise error_of(int(obj.get("code") or 500), json.dumps(obj))
                yield Event(event["type"], _with_kind(obj, kind))
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise ApiError(0, "", f"watch of {kind.plural} ended: {exc}") from exc
        finally:
            with self._lock:
                self._streams.discard(raw)
            raw.release_conn()

    def shutdown_streams(self) -> None:
        """End every open watch now (from another thread), so that its reader returns."""
        with self._lock:
            streams = list(self._streams)
        for raw in streams:
            try:
                raw.shutdown()
            except (OSError, AttributeError, RuntimeError):  # released, or an older urllib3
                raw.close()

    # -- requests ---------------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        response = self._send(method, path, query=query, body=body, content_type=content_type)
        data = response.read()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError as exc:
            raise ApiError(response.status, "", f"{method} {path}: not JSON") from exc
        if not isinstance(parsed, dict):
            raise ApiError(response.status, "", f"{method} {path}: not a JSON object")
        return parsed

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, payload, _ = self._client.param_serialize(
            method,
            path,
            query_params=query or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._client.call_api(
                method, url, header_params=headers, body=payload,
                _request_timeout=timeout or self._timeout,
            )  # fmt: skip
        except kube_client.ApiException as exc:
            raise error_of(int(exc.status or 0), exc.body or str(exc.reason or exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, "", f"{method} {path}: {exc}") from exc
        if not 200 <= response.status < 300:
            raise error_of(response.status, response.read())
        return response


def _with_kind(obj: Obj, kind: Kind) -> Obj:
    """List items and watch objects may omit kind and apiVersion; put them back."""
    if isinstance(obj, dict) and obj.get("kind") != "Status":
        obj.setdefault("kind", kind.kind)
        obj.setdefault("apiVersion", kind.api_version)
    return obj


def _lines(raw: Any) -> Iterator[bytes]:
    """The newline-separated JSON documents of a watch stream."""
    buffer = b""
    for chunk in raw.stream(amt=None, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
