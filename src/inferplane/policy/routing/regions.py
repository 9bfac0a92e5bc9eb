"""Which endpoints a strategy may choose from: ready ones, in the caller's region first."""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import NamedTuple

from inferplane.policy.routing.endpoints import EndpointState


@dataclass(frozen=True)
class RegionPolicy:
    """When to leave the caller's own region."""

    local: str | None = None
    """The gateway's region (`--region`); None routes over every region alike."""
    saturated_load: float = 64.0
    """An endpoint with load() at or above this is saturated."""
    failing_error_rate: float = 0.5
    """An endpoint whose recent error rate reaches this counts as failing: it is chosen only
    when every ready endpoint is failing."""


class Candidates(NamedTuple):
    """What a strategy may choose from (a tuple: made once per request)."""

    endpoints: tuple[EndpointState, ...]
    spilled: bool
    """True when the local region was passed over."""


def candidates(
    endpoints: Sequence[EndpointState], policy: RegionPolicy, tried: Set[str] = frozenset()
) -> Candidates:
    """Ready endpoints not `tried` by this request (retries.py) that are not failing (failing
    ones only when every one is), of the local region while one of them can take more; else
    of every region, local ones included (a saturated local endpoint may still be the least
    loaded)."""
    if tried:
        ready = tuple([e for e in endpoints if e.ready and e.name not in tried])
    else:
        ready = tuple([e for e in endpoints if e.ready])
    bar = policy.failing_error_rate
    usable = tuple([e for e in ready if e.error_rate < bar]) or ready
    if policy.local is None:
        return Candidates(usable, spilled=False)
    local = tuple(e for e in usable if e.region == policy.local)
    if any(e.load() < policy.saturated_load for e in local):
        return Candidates(local, spilled=False)
    return Candidates(usable, spilled=len(usable) > len(local))
