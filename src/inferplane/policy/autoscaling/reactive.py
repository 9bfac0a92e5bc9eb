"""Knative's reactive sizing: a stable window, a panic window and the panic's memory.

desired = ceil(total / target) over each window; both are bounded per decision by the ready
replicas (`rate_bounds`). The panic window decides while panicking, and a panic never scales
down: it keeps the most it asked for (and at least the stable window's answer) until it ends,
a stable window after the panic window was last over the threshold.

Outside a panic, a stable answer within TOLERANCE of the current replicas keeps them (as the
Kubernetes HPA's tolerance does): without it a load near a multiple of the target flips the
rounding up and down with the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from inferplane.api import autoscaling
from inferplane.policy.autoscaling import samples, verdicts, windows
from inferplane.policy.autoscaling.state import State

TOLERANCE = 0.1
"""Outside a panic, keep the current replicas while the stable load per current replica is
within this fraction of the target."""


@dataclass(frozen=True)
class Load:
    desired: int
    mode: Literal["stable", "panic"]
    value: float
    """The deciding window's total per ready replica."""
    stable_total: float


def rate_bounds(spec: autoscaling.AutoscalingSpec, *, ready: int, current: int) -> tuple[int, int]:
    """[floor(r / maxScaleDownRate), max(current, ceil(r × maxScaleUpRate))], r = max(1, ready).

    Growth is a multiple of what is Ready, not of what was asked for, so decisions taken while
    replicas start do not compound (2 -> 4 -> 8 with none Ready); and the bound never cuts
    below `current`, so it cannot cancel replicas already asked for.
    """
    base = max(1, ready)
    low = math.floor(base / spec.maxScaleDownRate)
    return low, max(current, math.ceil(base * spec.maxScaleUpRate))


def load(
    spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs, state: State
) -> tuple[Load | None, State]:
    """The load's answer and the panic's next state; None when the load is unknown."""
    stable = windows.demand(spec, inputs, seconds=spec.stableWindowSeconds)
    panic = windows.demand(spec, inputs, seconds=spec.panicWindowSeconds)
    if stable is None or panic is None:
        return None, state
    base = max(1, len(inputs.ready))
    low, high = rate_bounds(spec, ready=len(inputs.ready), current=inputs.current)
    # Knative compares the unrounded panic demand: rounding up would panic at 1.01 × capacity.
    over = bool(inputs.ready) and panic / spec.target / base >= spec.panicThreshold
    state = _next_panic(state, over=over, now=inputs.now, window=spec.stableWindowSeconds)
    steady = verdicts.clamp(_stable_replicas(spec, stable, inputs.current), low, high)
    if state.panic_since is None:
        return Load(steady, "stable", stable / base, stable), state
    desired = verdicts.clamp(verdicts.replicas_for(panic, spec.target), low, high)
    # The stable window can exceed the panic one as a surge ebbs: provision for both (Knative).
    desired = max(desired, steady, state.max_panic_desired)
    return Load(desired, "panic", panic / base, stable), replace(state, max_panic_desired=desired)


def _stable_replicas(spec: autoscaling.AutoscalingSpec, total: float, current: int) -> int:
    if current > 0 and abs(total / (current * spec.target) - 1) <= TOLERANCE:
        return current
    return verdicts.replicas_for(total, spec.target)


def _next_panic(state: State, *, over: bool, now: float, window: float) -> State:
    if over:
        since = now if state.panic_since is None else state.panic_since
        return replace(state, panic_since=since, panic_last_over=now)
    last = state.panic_last_over if state.panic_last_over is not None else state.panic_since
    if state.panic_since is not None and last is not None and now - last >= window:
        return replace(state, panic_since=None, panic_last_over=None, max_panic_desired=0)
    return state


def verdict(spec: autoscaling.AutoscalingSpec, result: Load) -> verdicts.Verdict:
    """The load's answer as a verdict, with its sentence."""
    relation = "over" if result.value > spec.target else "at or under"
    reason = (
        f"{spec.metric} {result.value:.3g} per replica {relation} target {spec.target:g} "
        f"({result.mode} window)"
    )
    return verdicts.Verdict(result.desired, reason, spec.metric, result.value, spec.target)
