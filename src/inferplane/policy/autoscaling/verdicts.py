"""A decision in the making: how many replicas, and which signal said so."""

from __future__ import annotations

import math
from dataclasses import dataclass

EPSILON = 1e-9
"""Slack in rounding up, so that a load of exactly 3 targets (summed in floating point as
3.0000000000000004) asks for 3 replicas, not 4."""


@dataclass(frozen=True)
class Verdict:
    desired: int
    reason: str
    metric: str
    """The spec's metric, "ttft"/"tpot" or "forecast": the signal that set `desired`."""
    value: float
    """That signal's observed value (per ready replica for load metrics)."""
    target: float


def replicas_for(total: float, target: float) -> int:
    """Replicas needed so that none carries more than `target` of `total` (Knative's ceil)."""
    return max(0, math.ceil(total / target - EPSILON))


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
