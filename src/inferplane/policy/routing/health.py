"""Recent outcomes per endpoint and per service: error rate and p99 time to first byte.

The gateway feeds them (`Outcomes.record`, one call per finished attempt) and the policy reads
them: an endpoint's error rate for routing (regions.py passes over failing endpoints), a
service's window for the fallback verdict (fallbacks.py). Time is always given, never read.

Counters move as outcomes arrive and leave the window, so reading the error rate is O(1) on
the request path; the p99 is computed only when a Service asks for a latency bound, and then
at most once a second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field


class Window:
    """Outcomes of the last `span` seconds."""

    __slots__ = ("_events", "_p99", "_p99_at", "errors", "span")

    def __init__(self, span: float = 30.0) -> None:
        self.span = span
        self._events: deque[tuple[float, bool, float]] = deque()
        self.errors = 0
        self._p99 = 0.0
        self._p99_at = -1.0

    def add(self, now: float, ok: bool, first_byte_seconds: float) -> None:
        self._events.append((now, ok, first_byte_seconds))
        if not ok:
            self.errors += 1
        self._trim(now)

    def _trim(self, now: float) -> None:
        events, horizon = self._events, now - self.span
        while events and events[0][0] < horizon:
            if not events.popleft()[1]:
                self.errors -= 1

    def count(self, now: float) -> int:
        self._trim(now)
        return len(self._events)

    def error_rate(self, now: float) -> float:
        total = self.count(now)
        return self.errors / total if total else 0.0

    def p99(self, now: float) -> float:
        """p99 first-byte seconds of successful requests in the window (0 without any)."""
        if now - self._p99_at >= 1.0:
            self._trim(now)
            latencies = sorted(t for _, ok, t in self._events if ok)
            # nearest rank: the ceil(0.99 n)-th smallest, in integers (0.99 n is inexact)
            rank = (len(latencies) * 99 + 99) // 100
            self._p99 = latencies[rank - 1] if latencies else 0.0
            self._p99_at = now
        return self._p99


@dataclass
class Outcomes:
    """The windows the router and the fallback verdict read, by endpoint and by service.

    Keys are whatever the caller names its endpoints and services by (the gateway uses
    (namespace, name)); a window is made on its first outcome, spanning the service's
    `fallbackWhen.windowSeconds`.
    """

    endpoints: dict[Hashable, Window] = field(default_factory=dict)
    services: dict[Hashable, Window] = field(default_factory=dict)

    def record(
        self,
        service: Hashable,
        endpoint: Hashable,
        span: float,
        now: float,
        ok: bool,
        first_byte_seconds: float,
    ) -> None:
        """One attempt on `endpoint` for `service` ended: `ok`, first byte after so long."""
        # once per request on the gateway: the two lookups inlined rather than a helper's
        window = self.endpoints.get(endpoint)
        if window is None:
            window = self.endpoints[endpoint] = Window(span)
        window.add(now, ok, first_byte_seconds)
        window = self.services.get(service)
        if window is None:
            window = self.services[service] = Window(span)
        window.add(now, ok, first_byte_seconds)

    def error_rate(self, endpoint: Hashable, now: float) -> float:
        """The endpoint's recent error rate; 0 without a failure in its window (O(1))."""
        window = self.endpoints.get(endpoint)
        return window.error_rate(now) if window is not None and window.errors else 0.0
