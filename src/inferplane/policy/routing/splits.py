"""Stage one: pick one of a Service's routes by weight (canary, blue-green).

The draw is injected — a `random.Random` or a float in [0, 1) — so that a seeded simulator
and a test see the same choices the gateway would make given the same numbers.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence

from inferplane.api import services
from inferplane.policy.routing.decisions import NoEndpoint


def split(
    routes: Sequence[services.Route],
    draw: random.Random | float,
    *,
    exclude: frozenset[str] = frozenset(),
) -> services.Route | NoEndpoint:
    """The route that takes this request, each with probability weight / total weight.

    `exclude` holds route targets (`deployment/chat`) already found empty, so the gateway can
    redraw among the rest; routes of weight 0 are never picked.
    """
    live = [r for r in routes if r.weight > 0 and r.target() not in exclude]
    if not live:
        return NoEndpoint("no route with a weight above 0" + (" left" if exclude else ""))
    return live[pick_weighted([r.weight for r in live], draw)]


def pick_weighted(weights: Sequence[int], draw: random.Random | float) -> int:
    """The index whose cumulative weight band holds the draw; every weight must be > 0."""
    point = draw.random() if isinstance(draw, random.Random) else draw
    if not 0.0 <= point < 1.0:
        raise ValueError(f"draw must be in [0, 1), got {point}")
    bounds = list(itertools.accumulate(weights))
    # bisect_right: a point exactly on a band's upper edge belongs to the next band.
    return bisect.bisect_right(bounds, point * bounds[-1])
