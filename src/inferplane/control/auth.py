"""Bearer-token authentication and per-namespace roles.

Tokens are ApiKey objects; only their SHA-256 hash is stored. The table of known hashes is kept
in memory and follows the store's watch, so a revoked key stops working as soon as its delete
is committed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from inferplane.api.registry import KindInfo
from inferplane.control import errors

SYSTEM_NAMESPACE = "inferplane-system"
TOKEN_PREFIX = "ipk_"
Verb = Literal["get", "list", "watch", "create", "update", "patch", "delete"]
READ_VERBS: frozenset[str] = frozenset({"get", "list", "watch"})
Role = Literal["admin", "deployer", "viewer"]


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    name: str
    """The ApiKey's name."""
    namespace: str
    """The namespace its role applies to."""
    role: Role
    expires_at: datetime | None = None

    @property
    def fleet_admin(self) -> bool:
        return self.role == "admin" and self.namespace == SYSTEM_NAMESPACE

    def can_read_namespace(self, namespace: str) -> bool:
        return self.fleet_admin or namespace == self.namespace

    def __str__(self) -> str:
        return f"apikey:{self.namespace}/{self.name}"


def principal_from(obj: dict[str, Any]) -> tuple[str, Principal] | None:
    """The (hash, principal) an ApiKey object grants, or None if it grants nothing."""
    spec = obj.get("spec", {})
    meta = obj["metadata"]
    token_hash = spec.get("tokenHash")
    if not token_hash or meta.get("deletionTimestamp"):
        return None
    expires = spec.get("expiresAt")
    expires_at = datetime.fromisoformat(expires) if isinstance(expires, str) else None
    return token_hash, Principal(meta["name"], meta["namespace"], spec["role"], expires_at)


class Authenticator:
    """Maps token hashes to principals; fed by a list and then by watch events."""

    def __init__(self) -> None:
        self._by_hash: dict[str, Principal] = {}
        self._by_key: dict[tuple[str, str], str] = {}

    def load(self, objects: list[dict[str, Any]]) -> None:
        self._by_hash.clear()
        self._by_key.clear()
        for obj in objects:
            self.upsert(obj)

    def upsert(self, obj: dict[str, Any]) -> None:
        self.remove(obj)
        granted = principal_from(obj)
        if granted is not None:
            token_hash, principal = granted
            self._by_hash[token_hash] = principal
            self._by_key[(principal.namespace, principal.name)] = token_hash

    def remove(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        old = self._by_key.pop((meta["namespace"], meta["name"]), None)
        if old is not None:
            self._by_hash.pop(old, None)

    def authenticate(self, authorization: str | None, *, now: datetime | None = None) -> Principal:
        if not authorization:
            raise errors.unauthorized("missing bearer token: send 'Authorization: Bearer TOKEN'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthorized("malformed Authorization header: expected 'Bearer TOKEN'")
        principal = self._by_hash.get(hash_token(token.strip()))
        if principal is None:
            raise errors.unauthorized("invalid bearer token")
        if principal.expires_at and principal.expires_at <= (now or datetime.now(UTC)):
            raise errors.unauthorized(f"token of {principal} has expired")
        return principal


def authorize(principal: Principal, verb: Verb, info: KindInfo, namespace: str | None) -> None:
    """Raise 403 unless the principal's role allows `verb` on `info` in `namespace`.

    `namespace` is None for fleet-scoped kinds and for lists across every namespace (which
    the caller filters to the namespaces the principal may read).
    """
    if principal.fleet_admin:
        return
    reading = verb in READ_VERBS
    target = f"{info.plural} in namespace {namespace!r}" if namespace else info.plural
    if not info.namespaced:
        if reading:
            return
        raise errors.forbidden(f"{principal} cannot {verb} {target}: fleet admins only")
    if namespace is not None and namespace != principal.namespace:
        raise errors.forbidden(
            f"{principal} cannot {verb} {target}: its role applies to {principal.namespace!r} only"
        )
    if info.kind == "Quota" and not reading:
        # A namespace's shared limits are the platform team's to set, not the namespace's.
        raise errors.forbidden(f"{principal} cannot {verb} {target}: fleet admins only")
    if info.kind == "ApiKey" and principal.role != "admin":
        raise errors.forbidden(f"{principal} cannot {verb} {target}: needs role admin")
    if not reading and principal.role == "viewer":
        raise errors.forbidden(f"{principal} cannot {verb} {target}: role viewer is read-only")
