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

from inferplane.api import apikeys
from inferplane.control import errors

SYSTEM_NAMESPACE = "inferplane-system"
TOKEN_PREFIX = "ipk_"
Verb = Literal["get", "list", "watch", "create", "update", "patch", "delete"]
READ_VERBS: frozenset[str] = frozenset({"get", "list", "watch"})
Role = apikeys.Role


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
    cluster: str | None = None
    """The cluster an agent speaks for (or a join key may join)."""

    @property
    def fleet_admin(self) -> bool:
        return self.role == "admin" and self.namespace == SYSTEM_NAMESPACE

    @property
    def agent(self) -> bool:
        return self.role == "agent" and self.namespace == SYSTEM_NAMESPACE

    @property
    def gateway(self) -> bool:
        return self.role == "gateway" and self.namespace == SYSTEM_NAMESPACE

    @property
    def component(self) -> bool:
        """An agent, gateway or join key: the fleet's own parts, never a tenant."""
        return self.role in apikeys.SYSTEM_ROLES

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
    principal = Principal(
        meta["name"], meta["namespace"], spec["role"], expires_at, spec.get("cluster")
    )
    return token_hash, principal


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
