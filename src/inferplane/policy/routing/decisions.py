"""What routing answers: an endpoint and why, or why there is none (never an exception)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Routed:
    """Send the request to this endpoint."""

    endpoint: str
    strategy: str
    why: str
    """For people and metrics: `prefix-aware: 3 blocks matched, load 2 within 4.0`."""
    spilled: bool = False
    """True when the endpoint is outside the caller's region because that region was
    saturated or had nothing ready."""


@dataclass(frozen=True)
class NoEndpoint:
    """Nothing to route to; the gateway falls back, or holds the request (scale from zero)."""

    reason: str


Decision = Routed | NoEndpoint
