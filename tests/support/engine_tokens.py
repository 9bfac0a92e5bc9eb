"""A replica's engine token, for tests that call an agent's engine directly (as the gateway
does): engines refuse every request without it."""

from __future__ import annotations

from typing import Any

from inferplane import client as api_client

SYSTEM = "inferplane-system"


def engine_token(client: api_client.Client, replica: dict[str, Any]) -> str:
    """The token of `replica` (as read with a fleet admin's `client`)."""
    name = (replica.get("status") or {}).get("engineTokenSecret")
    assert name, f"no engine token issued for {replica['metadata']['name']}"
    token: str = client.reveal(name, namespace=SYSTEM)["data"]["token"]
    return token
