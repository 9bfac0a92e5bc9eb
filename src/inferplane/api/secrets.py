"""The Secret kind: named values that are written through the API and never read back.

A user writes `spec.data` (key → value); the control plane encrypts each value into
`spec.encryptedData` before it reaches the store, keeps only the keys and sizes in `status`,
and never returns a value or its ciphertext. Only the identities that need a value receive it
(a gateway the Secrets its Endpoints reference, an agent the engine tokens of its replicas),
through the `reveal` subresource.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Final, Literal

from pydantic import AfterValidator, Field, model_validator

from inferplane.api import errors, meta

SecretType = Literal["Opaque", "inferplane.dev/engine-token"]
OPAQUE: Final = "Opaque"
ENGINE_TOKEN: Final = "inferplane.dev/engine-token"
"""The type of a per-replica engine token, made by the control plane in SYSTEM_NAMESPACE."""

ENGINE_TOKEN_KEY: Final = "token"
"""The key of an engine-token Secret that holds the token."""
ENGINE_TOKEN_NAMESPACE: Final = "inferplane-system"
"""Where engine-token Secrets live: no tenant reads or references a Secret there."""
REPLICA_NAMESPACE_LABEL: Final = "inferplane.dev/replica-namespace"
REPLICA_NAME_LABEL: Final = "inferplane.dev/replica-name"

MAX_TOTAL_BYTES: Final = 1 << 20
"""Most bytes of values one Secret may hold, as Kubernetes bounds its Secrets."""

_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"{key!r} is not a valid key: use 1-253 letters, digits, '-', '_', '.'")
    return key


SecretKey = Annotated[str, AfterValidator(check_key)]


_ENGINE_TOKEN_NAME = re.compile(
    r"^engine-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)


def engine_token_name(replica_uid: str) -> str:
    """The name of a replica's engine-token Secret in the system namespace."""
    return f"engine-{replica_uid}"


def replica_uid_of(name: str) -> str | None:
    """The replica uid an engine-token Secret's name carries; None for any other name."""
    found = _ENGINE_TOKEN_NAME.match(name)
    return found.group(1) if found else None


class SecretSpec(meta.Model):
    """The values (write-only) and their kind."""

    type: SecretType = OPAQUE
    """Opaque for values users write; inferplane.dev/engine-token is made by the control plane
    for each replica and cannot be written through the API."""
    data: dict[SecretKey, str] | None = None
    """Values by key, accepted on create, replace and patch (null deletes a key in a patch) and
    never returned: reads show `status.keys` instead. A replace without `data` keeps the values."""
    encryptedData: dict[SecretKey, str] | None = None
    """Server-managed: the values encrypted at rest (AES-256-GCM); never accepted from a client
    and never returned."""

    @model_validator(mode="after")
    def _bounded(self) -> SecretSpec:
        total = sum(len(v.encode()) for v in (self.data or {}).values())
        if total > MAX_TOTAL_BYTES:
            message = f"values total {total} bytes; at most {MAX_TOTAL_BYTES} are allowed"
            raise errors.field_error("data", message=message)
        return self


class SecretStatus(meta.Status):
    """What may be shown of the values: their keys and sizes."""

    keys: dict[str, int] = Field(default_factory=dict)
    """Size in bytes of each key's value."""


class Secret(meta.Resource[SecretSpec, SecretStatus]):
    """Named values, encrypted at rest, that the API never returns."""

    KIND: ClassVar[str] = "Secret"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["Secret"] = "Secret"
    """Always Secret."""
    spec: SecretSpec = Field(default_factory=SecretSpec)
    """The values and their type."""
    status: SecretStatus = Field(default_factory=SecretStatus)
    """Keys and sizes, written by the control plane."""


class SecretKeyRef(meta.Model):
    """A value of a Secret in the referring object's own namespace."""

    name: meta.DnsLabel
    """The Secret's name."""
    key: SecretKey
    """The key within the Secret."""
