"""Latency objectives (TTFT, TPOT) beside the load metric.

Each objective reads the nearest-rank percentile of the ready replicas' samples over the
stable window and compares it with targetSeconds:
- over target: ask for ceil(ready × observed / target) replicas, if more than the load asks;
  but while replicas are starting, hold instead: the latency is measured on ready replicas
  only, so it cannot see the capacity already coming, and asking again would compound;
- between comfort × target and target: hold (no scale-down below current);
- under comfort × target: the load decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from inferplane.api import autoscaling
from inferplane.policy.autoscaling import samples, verdicts

Name = Literal["ttft", "tpot"]


@dataclass(frozen=True)
class Reading:
    name: Name
    observed: float
    """The objective's percentile over the stable window, seconds."""
    objective: autoscaling.LatencyObjective


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p % of values at or under it."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered) - verdicts.EPSILON))
    return ordered[min(rank, len(ordered)) - 1]


def readings(spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs) -> list[Reading]:
    """The objectives that have samples, ttft then tpot."""
    if spec.objectives is None:
        return []
    since = inputs.now - spec.stableWindowSeconds
    window = [s for s in inputs.samples if s.replica in inputs.ready and s.time >= since]
    found = []
    pairs: tuple[tuple[Name, autoscaling.LatencyObjective | None], ...] = (
        ("ttft", spec.objectives.ttft),
        ("tpot", spec.objectives.tpot),
    )
    for name, objective in pairs:
        values = [v for v in (getattr(s, name) for s in window) if v is not None]
        if objective is not None and values:
            found.append(Reading(name, percentile(values, objective.percentile), objective))
    return found


def adjust(
    verdict: verdicts.Verdict, found: Sequence[Reading], *, inputs: samples.Inputs, high: int
) -> verdicts.Verdict:
    """The verdict after each objective; `high` is the per-decision scale-up bound."""
    for reading in found:
        verdict = _one(verdict, reading, inputs=inputs, high=high)
    return verdict


def _one(
    verdict: verdicts.Verdict, reading: Reading, *, inputs: samples.Inputs, high: int
) -> verdicts.Verdict:
    target = reading.objective.targetSeconds
    said = f"{reading.name} p{reading.objective.percentile:g} {reading.observed:.3g} s"
    if reading.observed > target and inputs.starting == 0:
        wanted = math.ceil(max(1, len(inputs.ready)) * reading.observed / target)
        wanted = min(wanted, high)
        if wanted <= verdict.desired:
            return verdict
        reason = f"{said} over target {target:g} s"
        return verdicts.Verdict(wanted, reason, reading.name, reading.observed, target)
    if reading.observed > target:
        reason = f"{said} over target {target:g} s while {inputs.starting} replicas start: holding"
    elif reading.observed > reading.objective.comfort * target:
        reason = f"{said} within {reading.objective.comfort:g} of target {target:g} s: holding"
    else:
        return verdict
    if inputs.current <= verdict.desired:
        return verdict
    return replace(
        verdict,
        desired=inputs.current,
        reason=reason,
        metric=reading.name,
        value=reading.observed,
        target=target,
    )
