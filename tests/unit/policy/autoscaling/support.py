"""Builders for the autoscaling tests: specs, ready replicas and their samples, in virtual time."""

from __future__ import annotations

from typing import Any

from inferplane.api import autoscaling as api
from inferplane.policy import autoscaling

INTERVAL = 2.0
"""Seconds between a replica's samples."""


def spec(**fields: Any) -> api.AutoscalingSpec:
    return api.AutoscalingSpec.model_validate(fields)


def names(count: int) -> frozenset[str]:
    return frozenset(f"r{i}" for i in range(count))


def samples(
    now: float, replicas: int, per_replica: float, *, seconds: float = 60.0, **extra: Any
) -> list[autoscaling.Sample]:
    """Every replica running `per_replica` requests, sampled every INTERVAL over `seconds`."""
    times = [now - k * INTERVAL for k in range(int(seconds / INTERVAL) + 1)]
    return [
        autoscaling.Sample(time=t, replica=r, running=per_replica, **extra)
        for r in sorted(names(replicas))
        for t in times
    ]


def inputs(
    now: float,
    *,
    current: int,
    per_replica: float = 0.0,
    ready: int | None = None,
    starting: int = 0,
    **extra: Any,
) -> autoscaling.Inputs:
    """`ready` (default `current`) replicas each carrying `per_replica` for the last minute."""
    count = current if ready is None else ready
    fields: dict[str, Any] = {"last_request_time": now} | extra
    sampled = fields.pop("samples", None)
    return autoscaling.Inputs(
        now=now,
        current=current,
        ready=names(count),
        starting=starting,
        samples=samples(now, count, per_replica) if sampled is None else sampled,
        **fields,
    )
