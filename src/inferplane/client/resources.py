"""The client of the resource API: reads, watches and writes of objects as plain dicts."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from types import TracebackType

import httpx

from inferplane import clientconfig, tls
from inferplane.api import registry
from inferplane.client import addressing, applying, audittrail, errors, replicalogs
from inferplane.client.addressing import (
    API_PREFIX,
    address,
    dry,
    namespace_for,
    path,
    selectors,
    with_namespace,
)
from inferplane.client.connection import Connection
from inferplane.client.objects import Object, ObjectList, Objects
from inferplane.client.watch import Watch

MERGE_PATCH = "application/merge-patch+json"


class Client:
    """A synchronous client of one control plane, as one identity (bearer token)."""

    def __init__(
        self,
        server: str,
        token: str | None,
        *,
        namespace: str = clientconfig.DEFAULT_NAMESPACE,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        tls: tls.ClientTLS | None = None,
    ) -> None:
        """`tls`: the CA bundle to verify an https:// server against (default: the system's
        CAs) and the client certificate to present (mutual TLS)."""
        self._conn = Connection(server, token, timeout=timeout, transport=transport, tls=tls)
        self.server = self._conn.server
        self.namespace = namespace
        """Namespace used when neither the call nor the object names one."""

    @classmethod
    def from_config(
        cls, context: str | None = None, *, transport: httpx.BaseTransport | None = None
    ) -> Client:
        """A client for the named context (else the current one), with env overrides applied."""
        conn = clientconfig.resolve(context)
        return cls(
            conn.server, conn.token, namespace=conn.namespace, transport=transport, tls=conn.tls
        )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------------

    def get(self, kind: str, name: str, *, namespace: str | None = None) -> Object:
        info = registry.lookup(kind)
        return self._conn.request("GET", path(info, self._ns(info, namespace), name))

    def reveal(self, name: str, *, namespace: str | None = None) -> Object:
        """A Secret's values that this identity may receive (a gateway: the keys its
        Endpoints reference), as ``{"data": {key: value}, "metadata": ...}``."""
        info = registry.lookup("Secret")
        return self._conn.request("GET", path(info, self._ns(info, namespace), name) + "/reveal")

    def list(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects; ``namespace=None`` lists every namespace the token may read."""
        info = registry.lookup(kind)
        params = selectors(label_selector, field_selector)
        body = self._conn.request("GET", path(info, namespace), params=params)
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        return ObjectList(items=list(body.get("items") or []), resource_version=version)

    def watch(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        bookmarks: bool = False,
    ) -> Watch:
        """Stream changes after ``resource_version`` (or every current object first, as ADDED).

        The stream is opened lazily, on the first ``next()``, so building a Watch costs nothing.
        """
        info = registry.lookup(kind)
        params = {"watch": "true", **selectors(label_selector, field_selector)}
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        where = path(info, namespace)
        return Watch(lambda: self._conn.stream(where, params), resource_version, bookmarks)

    def get_scale(self, kind: str, name: str, *, namespace: str | None = None) -> Object:
        info = registry.lookup(kind)
        return self._conn.request("GET", path(info, self._ns(info, namespace), name, "scale"))

    # -- writes --------------------------------------------------------------------------------

    def join(self, cluster: str) -> Object:
        """Exchange this client's join token for an agent key of `cluster`: the answer's
        ``token`` is shown once (docs/security.md, identities)."""
        return self._conn.request("POST", f"{API_PREFIX}/join", json={"cluster": cluster})

    def create(self, obj: Object, *, dry_run: bool = False) -> Object:
        info, namespace, _ = address(obj, self.namespace)
        body = with_namespace(obj, namespace)
        return self._conn.request("POST", path(info, namespace), params=dry(dry_run), json=body)

    def replace(self, obj: Object, *, dry_run: bool = False) -> Object:
        """PUT the whole object; a stale ``metadata.resourceVersion`` in it raises Conflict."""
        info, namespace, name = address(obj, self.namespace)
        where = path(info, namespace, name)
        body = with_namespace(obj, namespace)
        return self._conn.request("PUT", where, params=dry(dry_run), json=body)

    def replace_status(self, obj: Object) -> Object:
        """PUT the object to its status subresource: only ``status`` changes."""
        info, namespace, name = address(obj, self.namespace)
        where = path(info, namespace, name, "status")
        return self._conn.request("PUT", where, json=with_namespace(obj, namespace))

    def patch(
        self,
        kind: str,
        name: str,
        patch: Object,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> Object:
        """Merge-patch (RFC 7386): objects merge, ``None`` deletes a key, lists are replaced."""
        info = registry.lookup(kind)
        where = path(info, self._ns(info, namespace), name, subresource)
        headers = {"Content-Type": MERGE_PATCH}
        content = json.dumps(patch).encode()
        params = dry(dry_run)
        return self._conn.request("PATCH", where, params=params, content=content, headers=headers)

    def delete(
        self, kind: str, name: str, *, namespace: str | None = None, dry_run: bool = False
    ) -> Object:
        """Delete; answers the object (still there while finalizers remain) or a Status."""
        info = registry.lookup(kind)
        where = path(info, self._ns(info, namespace), name)
        return self._conn.request("DELETE", where, params=dry(dry_run))

    def set_scale(
        self, kind: str, name: str, replicas: int, *, namespace: str | None = None
    ) -> Object:
        """Set ``spec.replicas`` through the scale subresource; answers the Scale object."""
        patch = {"spec": {"replicas": replicas}}
        return self.patch(kind, name, patch, namespace=namespace, subresource="scale")

    def apply(self, obj: Object, *, dry_run: bool = False) -> applying.ApplyResult:
        """Create the object, or replace it with this desired state; say which happened.

        Retries when someone else wrote between our read and our write: apply means "make it
        so", so the user's desired state wins over a concurrent edit, as with ``kubectl apply``.
        """
        attempts = applying.APPLY_ATTEMPTS
        while True:
            attempts -= 1
            try:
                return self._apply_once(obj, dry_run=dry_run)
            except (errors.Conflict, errors.AlreadyExists):
                if attempts == 0:
                    raise

    def _apply_once(self, obj: Object, *, dry_run: bool) -> applying.ApplyResult:
        info, namespace, name = address(obj, self.namespace)
        try:
            live = self.get(info.kind, name, namespace=namespace)
        except errors.NotFound:
            return applying.ApplyResult("created", self.create(obj, dry_run=dry_run))
        result = self.replace(applying.desired_over(obj, live), dry_run=dry_run)
        return applying.replaced(live, result)

    # -- replica logs (docs/agent.md) and the audit trail (docs/security-audit.md) -------------

    def stream_log(
        self,
        name: str,
        *,
        namespace: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
    ) -> Iterator[bytes]:
        """A replica's log as its agent sends it, chunk by chunk; with `follow`, until the
        caller stops iterating or the stream is cut."""
        namespace = namespace or self.namespace
        return replicalogs.stream(self._conn, namespace, name, follow=follow, tail_lines=tail_lines)

    def log_requests(self, cluster: str, *, known: Sequence[str], timeout_seconds: int) -> Objects:
        """For agents: the cluster's open log sessions, once they differ from `known` (or
        after `timeout_seconds`)."""
        return replicalogs.requests(self._conn, cluster, known=known, wait=timeout_seconds)

    def push_log(
        self, namespace: str, name: str, *, session: str, data: bytes, eof: bool = False
    ) -> None:
        """For agents: send a chunk of a replica's log to the reader of `session`; NotFound
        once the reader has gone."""
        replicalogs.push(self._conn, namespace, name, session=session, data=data, eof=eof)

    # -- the metrics channel (docs/autoscaling.md): load kept in memory, never stored ----------

    def report_load(self, report: Object) -> Object:
        """For agents: a ReplicaLoadReport (api/loadreports.py) of their Ready replicas."""
        return self._conn.request("POST", f"{addressing.API_PREFIX}/load/replicas", json=report)

    def report_traffic(self, report: Object) -> Object:
        """For gateways: a GatewayTrafficReport of their traffic per deployment."""
        return self._conn.request("POST", f"{addressing.API_PREFIX}/load/gateways", json=report)

    def audit(
        self,
        *,
        since: datetime | None = None,
        user: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int | None = None,
    ) -> Objects:
        """Audit records (fleet admins only): the newest ``limit`` that match, oldest first."""
        filters = audittrail.Filters(since, user, kind, namespace, limit)
        return audittrail.records(self._conn, filters)

    def _ns(self, info: registry.KindInfo, namespace: str | None) -> str | None:
        return namespace_for(info, namespace, self.namespace)
