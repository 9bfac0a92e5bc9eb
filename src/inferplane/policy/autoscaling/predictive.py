"""Predictive mode: record the load into the history and provision for its forecast.

Each decision stores the deployment's total (each ready replica's latest sample in the stable
window, summed, plus held requests for concurrency) as the value of now's bucket, keeping
historySeconds. The forecast is for now plus the cold-start horizon (spec coldStartSeconds,
else the measured cold start, else DEFAULT_COLD_START_SECONDS), so replicas asked for now are
Ready when the load arrives. It only ever raises the reactive answer.
"""

from __future__ import annotations

import math
from dataclasses import replace

from inferplane.api import autoscaling
from inferplane.policy.autoscaling import forecast, samples, verdicts, windows
from inferplane.policy.autoscaling.state import State

DEFAULT_COLD_START_SECONDS = 60.0
"""The horizon when neither the spec nor a measurement gives a cold start."""


def horizon_seconds(spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs) -> float:
    if spec.predictive.coldStartSeconds is not None:
        return spec.predictive.coldStartSeconds
    if inputs.cold_start_seconds is not None and inputs.cold_start_seconds > 0:
        return inputs.cold_start_seconds
    return DEFAULT_COLD_START_SECONDS


def observe(spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs, state: State) -> State:
    """The state with now's load in its history; unchanged while the load is unknown."""
    total = windows.demand(spec, inputs, seconds=spec.stableWindowSeconds, latest=True)
    if total is None:
        return state
    history = forecast.record(
        state.history,
        now=inputs.now,
        total=total,
        bucket=spec.predictive.bucketSeconds,
        keep=spec.predictive.historySeconds,
    )
    return replace(state, history=history)


def predicted_total(
    spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs, state: State
) -> float:
    """The forecast total one horizon ahead, never negative."""
    bucket = spec.predictive.bucketSeconds
    values = forecast.series(state.history, bucket=bucket)
    season = round(spec.predictive.seasonSeconds / bucket)
    steps = max(1, math.ceil(horizon_seconds(spec, inputs) / bucket - verdicts.EPSILON))
    return max(0.0, forecast.holt_winters(values, season, steps))


def raise_to_forecast(
    verdict: verdicts.Verdict,
    spec: autoscaling.AutoscalingSpec,
    inputs: samples.Inputs,
    state: State,
    *,
    high: int,
) -> verdicts.Verdict:
    """The verdict, raised to the forecast's replicas (within `high`) when they are more."""
    if not state.history:
        return verdict
    total = predicted_total(spec, inputs, state)
    wanted = min(high, verdicts.replicas_for(total, spec.target))
    if wanted <= verdict.desired:
        return verdict
    per_replica = total / max(1, len(inputs.ready))
    reason = (
        f"forecast {spec.metric} {per_replica:.3g} per replica in "
        f"{horizon_seconds(spec, inputs):g} s over target {spec.target:g}"
    )
    return verdicts.Verdict(wanted, reason, "forecast", per_replica, spec.target)
