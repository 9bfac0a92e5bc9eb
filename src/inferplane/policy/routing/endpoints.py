"""What the router knows of one endpoint, and the one definition of its load."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class EndpointState:
    """A snapshot of one routable endpoint as the gateway sees it now: made per request and
    read, never changed (not frozen: a frozen dataclass takes 2.5× as long to build, and the
    gateway builds one per endpoint per request)."""

    name: str
    """The Endpoint's name; strategies key their memory (hashes, prefix index) by it."""
    region: str = ""
    """The region of its cluster; "" for unknown (never local to a named region)."""
    ready: bool = True
    """Ready to serve; a not-ready endpoint is never chosen."""
    in_flight: int = 0
    """Requests this gateway has sent and not yet seen finish: exact and current."""
    engine_running: int = 0
    """Requests the engine last reported running (all gateways'; lags by seconds)."""
    engine_waiting: int = 0
    """Requests the engine last reported queued (all gateways'; lags by seconds)."""
    kv_usage: float = 0.0
    """Fraction of the engine's KV cache in use, 0..1, as last reported."""
    error_rate: float = 0.0
    """Recent fraction of requests that failed, 0..1."""

    def load(self) -> float:
        """The one load figure every strategy compares.

        Our own in-flight count is current but blind to other gateways; the engine's
        running + waiting sees everyone but lags. The larger of the two errs towards busy:
        a just-sent burst counts at once, and so does traffic from other gateways. A full KV
        cache adds a fraction so that, between equal counts, the engine about to preempt
        loses the tie.
        """
        engine = self.engine_running + self.engine_waiting
        return max(self.in_flight, engine) + min(max(self.kv_usage, 0.0), 1.0) * 0.5
