"""One autoscaling decision: the steps in order, each a small function of the verdict so far.

1. load (reactive): stable or panic window, or hold `current` while the load is unknown;
2. latency objectives: raise, or hold within the comfort band;
3. predictive mode: raise to the forecast one cold start ahead;
4. scale to zero: 0 only when minReplicas is 0, idle and nothing held; else at least 1;
5. scale-down delay: the most recommended over the last scaleDownDelaySeconds;
6. scale from zero: a held request at the gateway asks for a replica at once;
7. bounds: clamp to [minReplicas, maxReplicas].
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from inferplane.api import autoscaling
from inferplane.policy.autoscaling import latency, predictive, reactive, samples, verdicts, windows
from inferplane.policy.autoscaling.state import State


@dataclass(frozen=True)
class Decision:
    desired: int
    state: State
    reason: str
    """A sentence for people, e.g. "concurrency 14.2 per replica over target 4 (panic window)"."""
    mode: Literal["stable", "panic"]
    metric: str
    """The spec's metric, or "ttft"/"tpot" when an objective decided, or "forecast"."""
    value: float
    """The observed value of `metric` (per ready replica for load) in the deciding window."""
    target: float


def decide(spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs, state: State) -> Decision:
    """How many replicas the deployment should have now, and the state to carry to the next."""
    if not spec.enabled:
        return _disabled(spec, inputs, state)
    result, state = reactive.load(spec, inputs, state)
    _, high = reactive.rate_bounds(spec, ready=len(inputs.ready), current=inputs.current)
    verdict = _unknown(spec, inputs) if result is None else reactive.verdict(spec, result)
    verdict = latency.adjust(verdict, latency.readings(spec, inputs), inputs=inputs, high=high)
    if spec.mode == "predictive":
        state = predictive.observe(spec, inputs, state)
        verdict = predictive.raise_to_forecast(verdict, spec, inputs, state, high=high)
    verdict = _to_zero(spec, inputs, verdict)
    verdict, state = _delay(spec, inputs, verdict, state)
    verdict = _bounds(spec, _from_zero(spec, inputs, verdict))
    if verdict.desired != inputs.current:
        state = replace(state, last_scale_time=inputs.now)
    mode: Literal["stable", "panic"] = "stable" if state.panic_since is None else "panic"
    return Decision(
        verdict.desired, state, verdict.reason, mode, verdict.metric, verdict.value, verdict.target
    )


def _disabled(spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs, state: State) -> Decision:
    total = windows.demand(spec, inputs, seconds=spec.stableWindowSeconds) or 0.0
    value = total / max(1, len(inputs.ready))
    return Decision(
        inputs.current, state, "autoscaling disabled", "stable", spec.metric, value, spec.target
    )


def _unknown(spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs) -> verdicts.Verdict:
    reason = f"no samples from ready replicas yet: keeping {inputs.current}"
    return verdicts.Verdict(inputs.current, reason, spec.metric, 0.0, spec.target)


def _to_zero(
    spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs, verdict: verdicts.Verdict
) -> verdicts.Verdict:
    if verdict.desired > 0 or spec.minReplicas > 0:
        return verdict  # at minReplicas > 0 the bounds raise it, and say so
    if windows.held(inputs, seconds=spec.stableWindowSeconds) > 0:
        return replace(verdict, desired=1, reason="held request at the gateway: keeping 1")
    last = inputs.last_request_time
    if last is None:
        return replace(verdict, reason="no requests seen: scaling to zero")
    idle = inputs.now - last
    if idle >= spec.scaleToZeroAfterSeconds:
        return replace(verdict, reason=f"no requests for {idle:.0f} s: scaling to zero")
    reason = (
        f"no load, but a request {idle:.0f} s ago: keeping 1 until "
        f"{spec.scaleToZeroAfterSeconds:g} s without requests"
    )
    return replace(verdict, desired=1, reason=reason)


def _delay(
    spec: autoscaling.AutoscalingSpec,
    inputs: samples.Inputs,
    verdict: verdicts.Verdict,
    state: State,
) -> tuple[verdicts.Verdict, State]:
    delay = spec.scaleDownDelaySeconds
    if delay <= 0:
        return verdict, replace(state, recommendations=())
    recent = [(t, n) for t, n in state.recommendations if t > inputs.now - delay]
    # Only the maximum matters, so an entry that a later, larger one outlives is dropped: the
    # kept counts decrease, the first is the maximum, and the state stays small.
    kept = (*[(t, n) for t, n in recent if n > verdict.desired], (inputs.now, verdict.desired))
    state = replace(state, recommendations=kept)
    most = kept[0][1]
    if most <= verdict.desired:
        return verdict, state
    reason = (
        f"{verdict.reason}; scale-down to {verdict.desired} delayed: {most} recommended "
        f"within the last {delay:g} s"
    )
    return replace(verdict, desired=most, reason=reason), state


def _from_zero(
    spec: autoscaling.AutoscalingSpec, inputs: samples.Inputs, verdict: verdicts.Verdict
) -> verdicts.Verdict:
    if inputs.current > 0 and inputs.ready:
        return verdict
    if windows.held(inputs, seconds=spec.stableWindowSeconds) == 0:
        return verdict
    desired = max(verdict.desired, 1, spec.minReplicas)
    if inputs.current == 0:
        return replace(
            verdict, desired=desired, reason="held request at the gateway: scaling from zero"
        )
    return replace(verdict, desired=desired)


def _bounds(spec: autoscaling.AutoscalingSpec, verdict: verdicts.Verdict) -> verdicts.Verdict:
    desired = verdicts.clamp(verdict.desired, spec.minReplicas, spec.maxReplicas)
    if desired == verdict.desired:
        return verdict
    reason = (
        f"{verdict.reason}; {verdict.desired} held within bounds "
        f"[{spec.minReplicas}, {spec.maxReplicas}]"
    )
    return replace(verdict, desired=desired, reason=reason)
