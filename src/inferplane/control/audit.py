"""The audit trail: which calls are recorded, at what level, and what of their bodies.

Every mutating call of the resource API (create, update, patch, delete, status and scale
writes) and every denied call (401, 403, 429, reads included) becomes one `AuditRecord`, as
Kubernetes audits: a policy of rules `{level, kinds, verbs}` (first match wins, else the
default level) says whether it is dropped (None), kept without its body (Metadata) or with it
(Request). One ASGI middleware sees each request's route, principal and status, so no handler
knows about auditing; the records go to a sink (auditlog.AuditWriter) that stores them in
batches off the request path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import pydantic
import yaml
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inferplane.api import registry
from inferplane.control.middleware import verb_of
from inferplane.store.base import AuditRecord

PREFIX = "/apis/inferplane.dev/v1"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DENIED = frozenset({401, 403, 429})
REDACTED = "[redacted]"
SUBRESOURCES = ("status", "scale", "log")


class Level(StrEnum):
    NONE = "None"
    METADATA = "Metadata"
    REQUEST = "Request"


class PolicyError(ValueError):
    """An audit policy file that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Rule:
    level: Level
    kinds: frozenset[str] = frozenset()
    """Plurals this rule is for; empty: every kind (and calls off the resource routes)."""
    verbs: frozenset[str] = frozenset()
    """Verbs this rule is for; empty: every verb."""

    def matches(self, kind: str, verb: str) -> bool:
        return (not self.kinds or kind in self.kinds) and (not self.verbs or verb in self.verbs)


@dataclass(frozen=True)
class Policy:
    default: Level = Level.METADATA
    rules: tuple[Rule, ...] = ()

    def level_for(self, kind: str, verb: str) -> Level:
        for rule in self.rules:
            if rule.matches(kind, verb):
                return rule.level
        return self.default


Verb = Literal["get", "list", "watch", "create", "update", "patch", "delete"]


class _RuleFile(pydantic.BaseModel, extra="forbid"):
    level: Level
    kinds: list[str] = []
    verbs: list[Verb] = []


class _PolicyFile(pydantic.BaseModel, extra="forbid"):
    rules: list[_RuleFile]


def load_policy(path: Path | None, *, default: Level) -> Policy:
    """The policy of a YAML file (`rules: [{level, kinds, verbs}]`), or the default alone."""
    if path is None:
        return Policy(default)
    try:
        parsed = _PolicyFile.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise PolicyError(f"{path}: {where}: {first['msg']}") from exc
    rules = []
    for i, rule in enumerate(parsed.rules):
        kinds = frozenset(_plural(name, f"{path}: rules.{i}.kinds") for name in rule.kinds)
        rules.append(Rule(rule.level, kinds, frozenset(rule.verbs)))
    return Policy(default, tuple(rules))


def _plural(name: str, where: str) -> str:
    try:
        return registry.lookup(name).plural
    except registry.UnknownKindError as exc:
        raise PolicyError(f"{where}: no kind {name!r}") from exc


# -- what of a body is recorded ------------------------------------------------------------


def redact(kind: str, body: Any) -> Any:
    """The body as the trail may keep it: a kind with values (Secret) keeps only its keys."""
    redactor = REDACTORS.get(kind)
    return redactor(body) if redactor is not None else body


def _secret(body: Any) -> Any:
    """A Secret's envelope and metadata, and the keys of spec.data and spec.encryptedData:
    anything else of its spec and status could hold a value, so it is not kept."""
    if not isinstance(body, dict):
        return REDACTED
    kept: dict[str, Any] = {k: body[k] for k in ("apiVersion", "kind") if k in body}
    if isinstance(body.get("metadata"), dict):
        kept["metadata"] = _secret_metadata(body["metadata"])
    if "spec" in body:
        kept["spec"] = _secret_spec(body["spec"])
    if "status" in body:
        kept["status"] = REDACTED
    return kept


def _secret_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in metadata.items() if k != "annotations"}
    if "annotations" in metadata:
        kept["annotations"] = _keys_only(metadata["annotations"])
    return kept


def _secret_spec(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return REDACTED
    kept: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type" and isinstance(value, str):
            kept[key] = value
        elif key in ("data", "encryptedData"):
            kept[key] = _keys_only(value)
        else:
            kept[key] = REDACTED
    return kept


def _keys_only(values: Any) -> Any:
    """{key: "[redacted]"}; a null (a merge patch deleting the key) stays null."""
    if not isinstance(values, dict):
        return REDACTED
    return {str(k): None if v is None else REDACTED for k, v in values.items()}


def _apikey(body: Any) -> Any:
    """An ApiKey without its token hash: a verifier of the credential is no record's business."""
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict) or spec.get("tokenHash") is None:
        return body
    return {**body, "spec": {**spec, "tokenHash": REDACTED}}


REDACTORS: dict[str, Callable[[Any], Any]] = {"Secret": _secret, "ApiKey": _apikey}
"""By kind name: what a Request-level record keeps of a body of that kind."""


# -- the middleware ------------------------------------------------------------------------


class _Exchange:
    """One request as the trail sees it: its body and response, when they are needed."""

    def __init__(self, scope: Scope, *, arrived: float) -> None:
        self.scope = scope
        self.arrived = arrived
        self.mutating = scope["method"] in MUTATING
        self.request: list[bytes] = []
        self.response: list[bytes] = []
        self.code = 500
        self.level = Level.NONE
        self.request_id = ""

    def body(self) -> Any:
        return _json(self.request)

    def answer(self) -> Any:
        return _json(self.response) if 200 <= self.code < 300 else None


def _json(chunks: list[bytes]) -> Any:
    try:
        return json.loads(b"".join(chunks)) if chunks else None
    except ValueError:
        return None


class AuditTrail:
    """Records audited calls; adds an Audit-Id header to their responses."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Policy,
        sink: Callable[[AuditRecord], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.policy = policy
        self.sink = sink
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        ex = _Exchange(scope, arrived=self.clock())

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request" and message.get("body"):
                ex.request.append(message["body"])
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = self._started(ex, message)
            elif ex.level is not Level.NONE and ex.mutating and 200 <= ex.code < 300:
                ex.response.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receiving if ex.mutating else receive, sending)
        finally:
            if ex.level is not Level.NONE:
                self.sink(self._record(ex))

    def _started(self, ex: _Exchange, message: Message) -> Message:
        """Decide at the response's head, once routing and auth are done."""
        ex.code = message["status"]
        params = ex.scope.get("path_params") or {}
        if not (ex.code in DENIED or (ex.mutating and "plural" in params)):
            return message
        ex.level = self.policy.level_for(str(params.get("plural", "")), verb_of(ex.scope))
        if ex.level is Level.NONE:
            return message
        ex.request_id = uuid.uuid4().hex
        headers = [*message.get("headers", ()), (b"audit-id", ex.request_id.encode())]
        return {**message, "headers": headers}

    def _record(self, ex: _Exchange) -> AuditRecord:
        scope = ex.scope
        params = scope.get("path_params") or {}
        principal = (scope.get("state") or {}).get("principal")
        client = scope.get("client")
        body = ex.body() if ex.mutating else None
        answer = ex.answer() if ex.mutating else None
        plural = str(params.get("plural", ""))
        return AuditRecord(
            time=datetime.fromtimestamp(ex.arrived, UTC),
            request_id=ex.request_id,
            level=str(ex.level),
            user=str(principal) if principal is not None else "anonymous",
            source=str(client[0]) if client else "",
            verb=verb_of(scope),
            kind=plural,
            namespace=str(params.get("namespace", "")),
            name=str(params.get("name", "")) or _name_in(answer, body),
            subresource=_subresource(scope["path"], params),
            path=scope["path"],
            code=ex.code,
            resource_version=None if _dry_run(scope) else _version_in(answer),
            body=_kept_body(plural, body) if ex.level is Level.REQUEST else None,
        )


def _kept_body(plural: str, body: Any) -> Any:
    """A body of a kind the server does not have is not kept: nothing knows how to redact it.
    Nor is one that is no JSON (None): its text could be anything."""
    if body is None:
        return None
    try:
        kind = registry.by_plural(plural).kind
    except registry.UnknownKindError:
        return None
    return redact(kind, body)


def _name_in(*bodies: Any) -> str:
    """A create's name: from the created object, else from what was sent."""
    for body in bodies:
        metadata = body.get("metadata") if isinstance(body, dict) else None
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            return str(metadata["name"])
    return ""


def _version_in(answer: Any) -> int | None:
    metadata = answer.get("metadata") if isinstance(answer, dict) else None
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return int(version) if isinstance(version, str) and version.isdigit() else None


def _subresource(path: str, params: dict[str, Any]) -> str:
    name = params.get("name")
    for sub in SUBRESOURCES:
        if name is not None and path.endswith(f"/{name}/{sub}"):
            return sub
    return ""


def _dry_run(scope: Scope) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return bool(query.get("dryRun"))
