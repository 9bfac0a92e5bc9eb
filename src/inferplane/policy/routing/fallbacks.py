"""Where a request goes when its service cannot take it: the fallback chain, and the verdict
that skips an unhealthy step of it.

A request tries its service first, then each step of the service's `fallback` in order (other
services, external endpoints); a step whose target does not exist is left out. Errors that
survive retries, and having no ready endpoint, always move on to the next step; a step that is
not the last is also skipped, before it is tried, while its recent outcomes cross the
service's `fallbackWhen` bounds. The last step is always tried: an answer from a struggling
service beats a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from inferplane.api import services
from inferplane.policy.routing.health import Window

S = TypeVar("S")
"""What the caller holds for a service (the gateway's ServiceEntry)."""
E = TypeVar("E")
"""What the caller holds for an external endpoint (the gateway's EndpointEntry)."""


def chain(
    service: S,
    steps: Sequence[services.Fallback],
    namespace: str,
    *,
    services_by_name: Mapping[tuple[str, str], S],
    endpoints_by_name: Mapping[tuple[str, str], E],
) -> Sequence[S | E]:
    """The targets to try in order: `service`, then each of its fallback `steps` that exists
    (looked up by (namespace, name))."""
    if not steps:
        return (service,)
    found: list[S | E] = [service]
    for step in steps:
        if step.service is not None:
            target: S | E | None = services_by_name.get((namespace, step.service))
        else:
            target = endpoints_by_name.get((namespace, step.endpoint or ""))
        if target is not None:
            found.append(target)
    return found


def judged(index: int, length: int) -> bool:
    """Whether the chain's step at `index` may be skipped for its health: all but the last."""
    return index < length - 1


def verdict(bounds: services.FallbackTriggers, window: Window | None, now: float) -> str | None:
    """Why a service whose recent outcomes are `window` should be skipped, else None: too
    few requests in the window never judge; then the error rate, then the p99 first byte."""
    if window is None or window.count(now) < bounds.minRequests:
        return None
    rate = window.error_rate(now)
    if bounds.errorRate is not None and rate >= bounds.errorRate:
        return f"error rate {rate:.0%} ≥ {bounds.errorRate:.0%}"
    if bounds.p99LatencySeconds is not None:
        p99 = window.p99(now)
        if p99 > bounds.p99LatencySeconds:
            return f"p99 first byte {p99:.2f} s > {bounds.p99LatencySeconds:g} s"
    return None
