"""The Python client of the resource API (docs/reference/resource-api.md).

Objects travel as plain dicts, exactly as the server sends them: the client is used by the CLI,
the agent, the gateway and tests, which each want the wire shape and nothing in between. Kinds
are named by anything ``registry.lookup`` accepts (``Deployment``, ``deployments``, ``deploy``).

Every failure is one of the exceptions below: ``ApiError`` (and a subclass per Status reason)
when the server answered with an error, ``ConnectionFailed`` when it could not be reached.
"""

from __future__ import annotations

import copy
import json
import ssl
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

import inferplane
from inferplane import clientconfig, tls
from inferplane.api import registry

API_PREFIX = "/apis/inferplane.dev/v1"
MERGE_PATCH = "application/merge-patch+json"
APPLY_ATTEMPTS = 3
"""How often apply re-reads and retries when someone else wrote between its read and write."""

Object = dict[str, Any]
Objects = list[Object]


class ClientError(Exception):
    """Root of every error the client raises."""


class ConnectionFailed(ClientError):
    """The server could not be reached (refused, DNS, TLS, timeout, stream cut)."""

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"cannot reach the control plane at {server}: {detail}")
        self.server = server
        self.detail = detail


class UntrustedServer(ConnectionFailed):
    """TLS: the server's certificate did not verify against the CA bundle (or the system's
    CAs when there is none), or was not issued for the address dialled."""


class CertificateRefused(ConnectionFailed):
    """TLS: the server refused this client's certificate, or wanted one and got none."""


_REFUSED_REASONS = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
    }
)
"""Alerts a server sends when it does not accept the client's certificate (or its absence)."""


def unreachable(server: str, exc: httpx.TransportError) -> ConnectionFailed:
    """The ConnectionFailed for a transport error: a TLS verification failure on either side
    is told apart from a server that is down, since the fix differs."""
    cause = _ssl_error(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = cause.verify_message or cause.reason or str(cause)
        return UntrustedServer(server, f"its TLS certificate is not trusted here: {why}")
    if cause is not None and cause.reason in _REFUSED_REASONS:
        return CertificateRefused(
            server, f"it refused this client's TLS certificate (or its absence): {cause.reason}"
        )
    detail = str(exc) or type(exc).__name__
    if server.startswith("https:") and _closed_unanswered(exc, cause):
        return ConnectionFailed(server, f"{detail} ({_REFUSAL_HINT})")
    return ConnectionFailed(server, detail)


_REFUSAL_HINT = (
    "a server that verifies client certificates closes the connection so when it does not "
    "accept this client's certificate, or its absence: check --client-cert/--client-key and "
    "that the server's --client-ca signed the certificate"
)


def _closed_unanswered(exc: httpx.TransportError, cause: ssl.SSLError | None) -> bool:
    """Closed by the server during or right after the TLS handshake, before any answer.

    asyncio's and uvloop's TLS servers (ours, uvicorn) drop the alert that says why they
    refuse a client certificate: the client sees only a closed connection, at the handshake
    under TLS 1.2, at its first read under TLS 1.3."""
    if isinstance(cause, ssl.SSLEOFError):
        return True
    if isinstance(exc, httpx.RemoteProtocolError):
        return "without sending a response" in str(exc)
    return isinstance(exc, httpx.ReadError) and _cause(exc, ConnectionResetError) is not None


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ssl.SSLError behind an httpx error, through httpcore's chained exceptions."""
    return _cause(exc, ssl.SSLError)


_Exc = TypeVar("_Exc", bound=BaseException)


def _cause(exc: BaseException, kind: type[_Exc]) -> _Exc | None:
    """The first exception of `kind` in the chain behind `exc` (itself included)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class BadObject(ClientError):
    """An object handed to the client lacks what is needed to address it (kind, name)."""


@dataclass(frozen=True)
class Cause:
    """One reason a request was refused, usually one bad field of the object."""

    field: str
    message: str


class ApiError(ClientError):
    """The server answered with a Status error body."""

    def __init__(self, status: int, reason: str, message: str, causes: list[Cause]) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes


class BadRequest(ApiError):
    """400: malformed body, bad selector, name in the body differing from the path."""


class Unauthorized(ApiError):
    """401: no token, or one the server does not know."""


class Forbidden(ApiError):
    """403: the token's role does not allow this verb here."""


class NotFound(ApiError):
    """404: no such object (or no such path)."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: create of a name that is taken."""


class Conflict(ApiError):
    """409 Conflict: the resourceVersion sent is stale; re-read and retry."""


class Gone(ApiError):
    """410: a watch asked for a compacted resourceVersion; list again and watch from there."""


class Invalid(ApiError):
    """422: schema or admission refused the object; ``causes`` names each bad field."""


_BY_REASON: dict[str, type[ApiError]] = {
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
}


def error_from_status(status: int, body: Any) -> ApiError:
    """Build the right ApiError subclass from a Status body (or whatever came instead)."""
    if not isinstance(body, dict) or body.get("kind") != "Status":
        text = str(body)[:500] if body else "no details"
        return _BY_STATUS.get(status, ApiError)(status, "Unknown", f"HTTP {status}: {text}", [])
    reason = str(body.get("reason") or "Unknown")
    details = body.get("details") or {}
    causes = [
        Cause(field=str(c.get("field") or ""), message=str(c.get("message") or ""))
        for c in details.get("causes") or []
        if isinstance(c, dict)
    ]
    error_type = _BY_REASON.get(reason) or _BY_STATUS.get(status, ApiError)
    return error_type(status, reason, str(body.get("message") or reason), causes)


def _error_from_response(response: httpx.Response) -> ApiError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return error_from_status(response.status_code, body)


@dataclass(frozen=True)
class ObjectList:
    """A list answer: the items and the resourceVersion a following watch should start from."""

    items: list[Object]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ADDED, MODIFIED, DELETED or BOOKMARK, and the object."""

    type: str
    object: Object

    @property
    def resource_version(self) -> str | None:
        return (self.object.get("metadata") or {}).get("resourceVersion")


def _event_from(line: str) -> WatchEvent:
    try:
        raw = json.loads(line)
        return WatchEvent(type=str(raw["type"]), object=raw.get("object") or {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        message = f"the server sent a watch line that is not an event: {line[:200]!r}"
        raise ApiError(200, "BadResponse", message, []) from exc


@dataclass(frozen=True)
class ApplyResult:
    """What apply did to the object, and the object as the server now holds it."""

    action: Literal["created", "configured", "unchanged"]
    object: Object


@dataclass
class Watch(Iterator[WatchEvent]):
    """A watch stream, opened on the first ``next()``; iteration ends when the server closes it.

    ``resource_version`` is the last version seen (events and bookmarks alike): watch again from
    it after the stream ends and nothing is missed or seen twice.
    """

    open_stream: Callable[[], Any]
    """Opens the HTTP stream; a context manager yielding an httpx.Response."""
    server: str
    resource_version: str | None = None
    bookmarks: bool = False
    """Yield BOOKMARK events too; they always advance ``resource_version``."""
    _events: Generator[WatchEvent, None, None] | None = field(default=None, init=False)

    def __next__(self) -> WatchEvent:
        if self._events is None:
            self._events = self._stream()
        return next(self._events)

    def close(self) -> None:
        """Drop the connection; safe at any time, and iterating afterwards stops at once."""
        if self._events is None:
            self._events = self._stream()
        self._events.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _stream(self) -> Generator[WatchEvent, None, None]:
        try:
            with self.open_stream() as response:
                if response.is_error:
                    response.read()
                    raise _error_from_response(response)
                yield from self._parse(response.iter_lines())
        except httpx.TransportError as exc:
            raise unreachable(self.server, exc) from exc

    def _parse(self, lines: Iterator[str]) -> Iterator[WatchEvent]:
        for line in lines:
            if not line.strip():
                continue
            event = _event_from(line)
            if event.type == "ERROR":
                raise error_from_status(int(event.object.get("code") or 500), event.object)
            self.resource_version = event.resource_version or self.resource_version
            if event.type != "BOOKMARK" or self.bookmarks:
                yield event


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
        self.server = server.rstrip("/")
        self.namespace = namespace
        """Namespace used when neither the call nor the object names one."""
        headers = {"User-Agent": f"inferplane/{inferplane.__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout
        verify: ssl.SSLContext | bool = tls.context() if tls is not None else True
        self._http = httpx.Client(
            base_url=self.server,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=verify,
        )

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
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------------

    def get(self, kind: str, name: str, *, namespace: str | None = None) -> Object:
        info = registry.lookup(kind)
        return self._request("GET", self._path(info, self._ns(info, namespace), name))

    def reveal(self, name: str, *, namespace: str | None = None) -> Object:
        """A Secret's values that this identity may receive (a gateway: the keys its
        Endpoints reference), as ``{"data": {key: value}, "metadata": ...}``."""
        info = registry.lookup("Secret")
        return self._request("GET", self._path(info, self._ns(info, namespace), name) + "/reveal")

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
        params = _selectors(label_selector, field_selector)
        body = self._request("GET", self._path(info, namespace), params=params)
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
        params = {"watch": "true", **_selectors(label_selector, field_selector)}
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        path = self._path(info, namespace)
        # A watch waits as long as the server keeps it open: no read timeout of our own.
        timeout = httpx.Timeout(self._timeout, read=None)

        def open_stream() -> Any:
            return self._http.stream("GET", path, params=params, timeout=timeout)

        return Watch(open_stream, self.server, resource_version, bookmarks)

    def get_scale(self, kind: str, name: str, *, namespace: str | None = None) -> Object:
        info = registry.lookup(kind)
        return self._request("GET", self._path(info, self._ns(info, namespace), name, "scale"))

    # -- writes --------------------------------------------------------------------------------

    def join(self, cluster: str) -> Object:
        """Exchange this client's join token for an agent key of `cluster`: the answer's
        ``token`` is shown once (docs/security.md, identities)."""
        return self._request("POST", f"{API_PREFIX}/join", json={"cluster": cluster})

    def create(self, obj: Object, *, dry_run: bool = False) -> Object:
        info, namespace, _ = self._address(obj)
        body = _with_namespace(obj, namespace)
        return self._request("POST", self._path(info, namespace), params=_dry(dry_run), json=body)

    def replace(self, obj: Object, *, dry_run: bool = False) -> Object:
        """PUT the whole object; a stale ``metadata.resourceVersion`` in it raises Conflict."""
        info, namespace, name = self._address(obj)
        path = self._path(info, namespace, name)
        body = _with_namespace(obj, namespace)
        return self._request("PUT", path, params=_dry(dry_run), json=body)

    def replace_status(self, obj: Object) -> Object:
        """PUT the object to its status subresource: only ``status`` changes."""
        info, namespace, name = self._address(obj)
        path = self._path(info, namespace, name, "status")
        return self._request("PUT", path, json=_with_namespace(obj, namespace))

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
        path = self._path(info, self._ns(info, namespace), name, subresource)
        headers = {"Content-Type": MERGE_PATCH}
        content = json.dumps(patch).encode()
        return self._request("PATCH", path, params=_dry(dry_run), content=content, headers=headers)

    def delete(
        self, kind: str, name: str, *, namespace: str | None = None, dry_run: bool = False
    ) -> Object:
        """Delete; answers the object (still there while finalizers remain) or a Status."""
        info = registry.lookup(kind)
        path = self._path(info, self._ns(info, namespace), name)
        return self._request("DELETE", path, params=_dry(dry_run))

    def set_scale(
        self, kind: str, name: str, replicas: int, *, namespace: str | None = None
    ) -> Object:
        """Set ``spec.replicas`` through the scale subresource; answers the Scale object."""
        patch = {"spec": {"replicas": replicas}}
        return self.patch(kind, name, patch, namespace=namespace, subresource="scale")

    def apply(self, obj: Object, *, dry_run: bool = False) -> ApplyResult:
        """Create the object, or replace it with this desired state; say which happened.

        Retries when someone else wrote between our read and our write: apply means "make it
        so", so the user's desired state wins over a concurrent edit, as with ``kubectl apply``.
        """
        attempts = APPLY_ATTEMPTS
        while True:
            attempts -= 1
            try:
                return self._apply_once(obj, dry_run=dry_run)
            except (Conflict, AlreadyExists):
                if attempts == 0:
                    raise

    def _apply_once(self, obj: Object, *, dry_run: bool) -> ApplyResult:
        info, namespace, name = self._address(obj)
        try:
            live = self.get(info.kind, name, namespace=namespace)
        except NotFound:
            return ApplyResult("created", self.create(obj, dry_run=dry_run))
        result = self.replace(_desired_over(obj, live), dry_run=dry_run)
        return ApplyResult("unchanged" if _same(live, result) else "configured", result)

    # -- replica logs (docs/agent.md) ----------------------------------------------------------

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
        path = self._log_path(namespace or self.namespace, name)
        params = {"follow": "true"} if follow else {}
        if tail_lines is not None:
            params["tailLines"] = str(tail_lines)
        timeout = httpx.Timeout(self._timeout, read=None)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise _error_from_response(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise unreachable(self.server, exc) from exc

    def log_requests(self, cluster: str, *, known: Sequence[str], timeout_seconds: int) -> Objects:
        """For agents: the cluster's open log sessions, once they differ from `known` (or
        after `timeout_seconds`)."""
        path = f"{API_PREFIX}/agents/{quote(cluster, safe='')}/log-requests"
        params = {"known": ",".join(known), "timeoutSeconds": str(timeout_seconds)}
        timeout = httpx.Timeout(self._timeout, read=timeout_seconds + self._timeout)
        body = self._request("GET", path, params=params, timeout=timeout)
        return list(body.get("requests") or [])

    def push_log(
        self, namespace: str, name: str, *, session: str, data: bytes, eof: bool = False
    ) -> None:
        """For agents: send a chunk of a replica's log to the reader of `session`; NotFound
        once the reader has gone."""
        params = {"session": session, **({"eof": "true"} if eof else {})}
        headers = {"Content-Type": "application/octet-stream"}
        path = self._log_path(namespace, name)
        try:
            response = self._http.post(path, params=params, content=data, headers=headers)
        except httpx.TransportError as exc:
            raise unreachable(self.server, exc) from exc
        if response.is_error:
            raise _error_from_response(response)

    def _log_path(self, namespace: str, name: str) -> str:
        ns, replica = quote(namespace, safe=""), quote(name, safe="")
        return f"{API_PREFIX}/namespaces/{ns}/replicas/{replica}/log"

    # -- the audit trail (docs/security-audit.md) ------------------------------------------------

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
        params: dict[str, str] = {}
        if since is not None:
            params["since"] = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        for param, value in (("user", user), ("namespace", namespace)):
            if value:
                params[param] = value
        if kind:
            params["kind"] = registry.lookup(kind).plural
        if limit is not None:
            params["limit"] = str(limit)
        body = self._request("GET", f"{API_PREFIX}/audit", params=params)
        return list(body.get("items") or [])

    # -- plumbing ------------------------------------------------------------------------------

    def _ns(self, info: registry.KindInfo, namespace: str | None) -> str | None:
        """The namespace an addressed call uses: none for fleet kinds, else given or default."""
        return (namespace or self.namespace) if info.namespaced else None

    def _address(self, obj: Object) -> tuple[registry.KindInfo, str | None, str]:
        kind = obj.get("kind")
        metadata = obj.get("metadata") or {}
        name = metadata.get("name")
        if not kind or not name:
            raise BadObject("an object needs a kind and a metadata.name")
        info = registry.lookup(str(kind))
        return info, self._ns(info, metadata.get("namespace")), str(name)

    def _path(
        self,
        info: registry.KindInfo,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        parts = [API_PREFIX]
        if info.namespaced and namespace:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(info.plural)
        if name:
            parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    def _request(self, method: str, path: str, **kwargs: Any) -> Object:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(self.server, exc) from exc
        if response.is_error:
            raise _error_from_response(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            message = f"the server answered {method} {path} with something other than an object"
            raise ApiError(response.status_code, "BadResponse", message, [])
        return body


def _selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _dry(dry_run: bool) -> dict[str, str]:
    return {"dryRun": "All"} if dry_run else {}


def _with_namespace(obj: Object, namespace: str | None) -> Object:
    """The object with its namespace filled in, so the body agrees with the path."""
    metadata = obj.get("metadata") or {}
    if namespace is None or metadata.get("namespace") == namespace:
        return obj
    return {**obj, "metadata": {**metadata, "namespace": namespace}}


def _desired_over(obj: Object, live: Object) -> Object:
    """The user's object made ready to replace the live one.

    It carries the live resourceVersion (so a concurrent write is detected, not overwritten
    blindly) and keeps the live finalizers and owner references when the user's object does not
    mention them: controllers set those, and a manifest that never knew of them must not drop them.
    """
    desired = copy.deepcopy(obj)
    metadata = desired.setdefault("metadata", {})
    live_metadata = live.get("metadata") or {}
    metadata["resourceVersion"] = live_metadata.get("resourceVersion")
    for key in ("finalizers", "ownerReferences"):
        if key not in metadata and key in live_metadata:
            metadata[key] = live_metadata[key]
    return desired


def _same(live: Object, result: Object) -> bool:
    """Nothing the user writes changed: the spec (generation), labels and annotations."""
    before = live.get("metadata") or {}
    after = result.get("metadata") or {}
    if before.get("generation") != after.get("generation"):
        return False
    return all(
        (before.get(key) or {}) == (after.get(key) or {}) for key in ("labels", "annotations")
    )
