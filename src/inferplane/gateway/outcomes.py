"""How one attempt on one endpoint ended."""

from __future__ import annotations

from dataclasses import dataclass

from inferplane.gateway.errors import GatewayError


@dataclass(frozen=True)
class Delivered:
    """The client got an answer (possibly an upstream's error, passed through)."""


@dataclass(frozen=True)
class Failed:
    """Nothing reached the client; `retryable` says another endpoint may do better."""

    error: GatewayError
    retryable: bool = False


Outcome = Delivered | Failed

DELIVERED = Delivered()
