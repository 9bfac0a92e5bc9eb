"""Trying again after a failed attempt: which upstream answers are worth another endpoint,
which endpoint is next, and when to stop.

Within one target (a service of the fallback chain) a request makes at most
`1 + retries.attempts` attempts, each on an endpoint not tried yet: stage one (splits.py)
draws a route among those not found empty, stage two (registry.route) picks among its
endpoints with the tried ones counted as not ready. It stops at the first answer that reached
the client, at a failure that another endpoint would not mend, when no untried endpoint is
left, or when the attempts are spent. A stream broken after its first byte is resumed
elsewhere at most `retries.attempts` times.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from inferplane.api import services
from inferplane.policy.routing import splits
from inferplane.policy.routing.decisions import NoEndpoint

RETRYABLE_STATUS = frozenset((429, 502, 503, 504))
"""Upstream answers that say "not now, not here" rather than "this request is wrong"."""


def retryable(status: int) -> bool:
    """Whether an upstream's answer with this status is better retried elsewhere than passed
    on to the client."""
    return status in RETRYABLE_STATUS


def tries(retries: services.Retries) -> int:
    """How many attempts one target may make: the first, and a retry per `attempts`."""
    return 1 + retries.attempts


def draw(
    routes: Sequence[services.Route], rng: random.Random, empty_routes: set[str]
) -> services.Route | NoEndpoint:
    """The route the next attempt takes: by weight among the routes not found empty this
    request (the caller adds a route's target to `empty_routes` when it has no usable
    endpoint, and draws again). A lone route is taken without a draw."""
    if len(routes) == 1 and not empty_routes:
        return routes[0]
    return splits.split(routes, rng, exclude=frozenset(empty_routes))


def may_resume(retries: services.Retries, *, resumable: bool, resumes: int) -> bool:
    """Whether a stream broken after its first byte is continued elsewhere once more: the call
    can be (calls.Call.resumable), the service allows it, and resumes are left."""
    return resumable and retries.resumeStreams and resumes < retries.attempts
