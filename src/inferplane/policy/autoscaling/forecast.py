"""Predictive mode's forecaster: additive Holt-Winters over a bucketed history of the load.

The smoothing constants are fixed (ALPHA, BETA, GAMMA) rather than fitted: a fit would move
with every new bucket and make the replicas jitter, and with exact initialisation a linear
trend, and a trend plus a repeating season, are tracked exactly whatever the constants.

Initialisation, for a season of m buckets and at least 2m of history: the level and trend from
the first two seasons' means, the seasonal offsets from the first season's deviations from that
trend line; without a season (or with less history), Holt's linear trend from the first two
points. The forecast is level + h × trend (+ the seasonal offset of the forecast's bucket).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ALPHA = 0.5
"""Smoothing of the level."""
BETA = 0.3
"""Smoothing of the trend."""
GAMMA = 0.3
"""Smoothing of the seasonal offsets."""


def holt_winters(series: Sequence[float], season_length: int, horizon_steps: int) -> float:
    """The series' value `horizon_steps` after its last point; 0.0 for an empty series.

    `season_length` 0 (or under half the series) forecasts with level and trend only.
    """
    if not series:
        return 0.0
    if len(series) == 1:
        return float(series[0])
    if season_length >= 2 and len(series) >= 2 * season_length:
        return _seasonal(series, season_length, horizon_steps)
    level, trend = float(series[0]), float(series[1] - series[0])
    for y in series[1:]:
        level, trend = _smooth(level, trend, y)
    return level + horizon_steps * trend


def _smooth(level: float, trend: float, deseasoned: float) -> tuple[float, float]:
    new_level = ALPHA * deseasoned + (1 - ALPHA) * (level + trend)
    return new_level, BETA * (new_level - level) + (1 - BETA) * trend


def _seasonal(series: Sequence[float], m: int, horizon: int) -> float:
    first = sum(series[:m]) / m
    trend = (sum(series[m : 2 * m]) / m - first) / m
    # The first season's mean is the level at its middle bucket, (m - 1) / 2.
    offsets = [series[i] - (first + trend * (i - (m - 1) / 2)) for i in range(m)]
    level = first + trend * (m - 1) / 2
    for t in range(m, len(series)):
        level, trend = _smooth(level, trend, series[t] - offsets[t % m])
        offsets[t % m] = GAMMA * (series[t] - level) + (1 - GAMMA) * offsets[t % m]
    return level + horizon * trend + offsets[(len(series) - 1 + horizon) % m]


def record(
    history: Sequence[tuple[float, float]],
    *,
    now: float,
    total: float,
    bucket: float,
    keep: float,
) -> tuple[tuple[float, float], ...]:
    """The history with `total` as the value of now's bucket (the latest value wins), and
    buckets older than `keep` seconds dropped."""
    start = math.floor(now / bucket) * bucket
    kept = [(t, v) for t, v in history if t > now - keep and t < start]
    return (*kept, (start, total))


def series(history: Sequence[tuple[float, float]], *, bucket: float) -> list[float]:
    """One value per bucket, oldest first; a bucket no decision saw repeats the one before."""
    values: list[float] = []
    previous: float | None = None
    for start, value in history:
        if previous is not None and values:
            gap = round((start - previous) / bucket) - 1
            values.extend([values[-1]] * max(0, gap))
        values.append(value)
        previous = start
    return values
