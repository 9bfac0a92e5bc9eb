"""Reading the audit trail (docs/security-audit.md): fleet admins only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from inferplane.api import registry
from inferplane.client import addressing
from inferplane.client.connection import Connection
from inferplane.client.objects import Objects


@dataclass(frozen=True)
class Filters:
    """Which records to read; every unset filter matches everything."""

    since: datetime | None = None
    user: str | None = None
    kind: str | None = None
    namespace: str | None = None
    limit: int | None = None
    """The newest this many that match (the server's default when unset)."""


def records(conn: Connection, filters: Filters) -> Objects:
    """The newest records that match, oldest first."""
    body = conn.request("GET", f"{addressing.API_PREFIX}/audit", params=_params(filters))
    return list(body.get("items") or [])


def _params(filters: Filters) -> dict[str, str]:
    params: dict[str, str] = {}
    if filters.since is not None:
        params["since"] = filters.since.astimezone(UTC).isoformat().replace("+00:00", "Z")
    for param, value in (("user", filters.user), ("namespace", filters.namespace)):
        if value:
            params[param] = value
    if filters.kind:
        params["kind"] = registry.lookup(filters.kind).plural
    if filters.limit is not None:
        params["limit"] = str(filters.limit)
    return params
