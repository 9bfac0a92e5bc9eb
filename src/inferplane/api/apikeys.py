"""The ApiKey kind: a hashed bearer token, its role in its namespace, and its limits.

The server stores only the token's SHA-256 hash. Creating an ApiKey without spec.tokenHash makes
the server generate a token; the create response carries it once, in status.token.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from inferplane.api import errors, meta

Role = Literal["admin", "deployer", "viewer", "agent", "gateway", "join"]
SYSTEM_ROLES: frozenset[str] = frozenset({"agent", "gateway", "join"})
"""Roles of the fleet's own components, valid only for keys in inferplane-system."""
BudgetPeriod = Literal["day", "month", "total"]

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def check_sha256_hex(value: str) -> str:
    if not _SHA256_HEX.match(value):
        raise ValueError("expected a SHA-256 digest: 64 lowercase hexadecimal characters")
    return value


class RateLimits(meta.Model):
    """Per-key limits the gateway enforces over a sliding minute; unset means unlimited."""

    requestsPerMinute: int | None = Field(None, ge=1)
    """Most requests per minute."""
    tokensPerMinute: int | None = Field(None, ge=1)
    """Most tokens (prompt plus generated) per minute."""


class Budget(meta.Model):
    """A cap on what may be spent per period, in cost (priced by each Service) or tokens."""

    cost: float | None = Field(None, gt=0)
    """Most cost per period, in the currency of the Services' pricing."""
    tokens: int | None = Field(None, ge=1)
    """Most tokens (prompt plus generated) per period."""
    period: BudgetPeriod = "day"
    """Period the budget resets after: day, month (calendar, UTC) or total (never)."""

    @model_validator(mode="after")
    def _some_cap(self) -> Budget:
        if self.cost is None and self.tokens is None:
            raise errors.field_error("cost", message="give cost, tokens or both")
        return self


class ApiKeySpec(meta.Model):
    """The key's role and limits, and the hash the server checks bearer tokens against."""

    role: Role = "viewer"
    """What the key may do in its namespace: viewer (read), deployer (also write the namespace's
    own kinds: Models, Deployments, Services, external Endpoints, Secrets; delete Replicas) or
    admin (also ApiKeys). Keys in inferplane-system may instead be the fleet's components: agent
    (one cluster's plane: its Cluster, Pools, Replicas' status), gateway (reads routes and keys,
    writes usage) or join (only exchanges itself for an agent key at POST /join)."""
    cluster: meta.DnsLabel | None = None
    """The cluster an agent key speaks for (required for role agent); on a join key, the only
    cluster it may join (unset: any cluster that has no agent key yet); on a gateway key, the
    plane whose edge it is: a tunnel it opens to a global gateway carries that cluster's
    traffic (docs/gateway.md#plane-edges-and-tunnels)."""
    description: str = ""
    """What or who the key is for."""
    tokenHash: Annotated[str, AfterValidator(check_sha256_hex)] | None = None
    """SHA-256 of the token, in hex; set by the server when it generates the token."""
    tokenPrefix: str | None = Field(None, max_length=16)
    """The token's first characters, to recognise it in listings; set by the server."""
    expiresAt: datetime | None = None
    """When the key stops working; unset never expires."""
    rateLimits: RateLimits = Field(default_factory=RateLimits)
    """Request and token rates the gateway allows this key."""
    budget: Budget | None = None
    """Cost or token budget per period; unset is unlimited."""


class ApiKeyStatus(meta.Status):
    """Usage, and the plain token in the create response only."""

    token: str | None = None
    """The plain token: present only in the response to the create that generated it, never
    stored and never shown again."""
    lastUsedTime: datetime | None = None
    """When a request last authenticated with the key."""
    tokensUsed: int = Field(0, ge=0)
    """Tokens used in the current budget period."""
    costUsed: float = Field(0.0, ge=0)
    """Cost spent in the current budget period."""
    periodStart: datetime | None = None
    """When the current budget period began."""


class ApiKey(meta.Resource[ApiKeySpec, ApiKeyStatus]):
    """A hashed API key with its role, rate limits and budget."""

    KIND: ClassVar[str] = "ApiKey"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["ApiKey"] = "ApiKey"
    """Always ApiKey."""
    spec: ApiKeySpec = Field(default_factory=ApiKeySpec)
    """Role, limits and the token's hash."""
    status: ApiKeyStatus = Field(default_factory=ApiKeyStatus)
    """Usage, written by the gateway through the control plane."""


class QuotaSpec(meta.Model):
    """Limits shared by every key of a namespace, on top of each key's own, and caps on what
    the namespace's deployments may run."""

    rateLimits: RateLimits = Field(default_factory=RateLimits)
    """Requests and tokens per minute, over all the namespace's keys together."""
    budget: Budget | None = None
    """Cost or token budget per period, over all the namespace's keys together."""
    maxReplicas: int | None = Field(None, ge=0)
    """Most Replica objects the namespace may hold, over all its deployments (those being
    deleted count until they are gone; those moving off a lost or drained cluster do not, their
    replacements take their place). The deployment controller creates no replica past it and
    sets the Deployment's condition QuotaExceeded; unset is unlimited."""
    maxDevices: int | None = Field(None, ge=0)
    """Most devices the namespace's replicas may request in all: each replica counts its
    devices per node (the sum of spec.resources.devices[].count) times its nodes. Enforced as
    maxReplicas is; unset is unlimited."""


class QuotaStatus(meta.Status):
    """Usage: tokens and cost written by the gateway, replicas and devices by the control
    plane."""

    replicas: int = Field(0, ge=0)
    """Replicas of the namespace counted against maxReplicas now."""
    devices: int = Field(0, ge=0)
    """Devices the namespace's counted replicas request now, against maxDevices."""
    tokensUsed: int = Field(0, ge=0)
    """Tokens used in the current budget period."""
    costUsed: float = Field(0.0, ge=0)
    """Cost spent in the current budget period."""
    periodStart: datetime | None = None
    """When the current budget period began."""


class Quota(meta.Resource[QuotaSpec, QuotaStatus]):
    """A namespace's shared rate limits, budget and replica and device caps; every Quota in a
    namespace applies."""

    KIND: ClassVar[str] = "Quota"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["Quota"] = "Quota"
    """Always Quota."""
    spec: QuotaSpec = Field(default_factory=QuotaSpec)
    """The namespace's limits."""
    status: QuotaStatus = Field(default_factory=QuotaStatus)
    """Usage in the current period, and the replicas and devices in use."""
