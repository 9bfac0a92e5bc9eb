"""Properties of the autoscaling policy over generated specs, loads and times (hypothesis).

Whatever the spec and the load: the bounds are never crossed; more load never asks for fewer
replicas; a constant noisy load settles and stays settled; a panic enters at the threshold and
leaves a stable window after it was last over; a held request scales from zero and idleness
scales to zero; replicas in flight do not compound; a forecast never lowers the reactive answer
and provisions ahead of a ramp.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.api import autoscaling as api
from inferplane.policy import autoscaling
from inferplane.policy.autoscaling import State, decide
from tests.unit.policy.autoscaling.support import inputs, names, samples, spec

NOW = 50_000.0


@st.composite
def specs(draw: st.DrawFn) -> api.AutoscalingSpec:
    low = draw(st.integers(0, 4))
    fields: dict[str, Any] = {
        "minReplicas": low,
        "maxReplicas": draw(st.integers(max(1, low), 40)),
        "target": draw(st.sampled_from((1.0, 4.0, 16.0))),
        "maxScaleUpRate": draw(st.sampled_from((1.5, 2.0, 1000.0))),
        "maxScaleDownRate": draw(st.sampled_from((1.5, 2.0, 10.0))),
        "scaleDownDelaySeconds": draw(st.sampled_from((0.0, 30.0))),
        "mode": draw(st.sampled_from(("reactive", "predictive"))),
    }
    if draw(st.booleans()):
        fields["objectives"] = {"ttft": {"targetSeconds": draw(st.sampled_from((0.2, 1.0)))}}
    return spec(**fields)


@st.composite
def situations(draw: st.DrawFn) -> autoscaling.Inputs:
    current = draw(st.integers(0, 30))
    ready = draw(st.integers(0, current))
    load = draw(st.floats(0, 100))
    ttft = draw(st.none() | st.floats(0.01, 5))
    step = inputs(
        NOW,
        current=current,
        ready=ready,
        starting=current - ready,
        samples=samples(NOW, ready, load, ttft=ttft),
        last_request_time=draw(st.none() | st.floats(NOW - 1000, NOW)),
    )
    held = draw(st.integers(0, 3))
    return replace(step, gateway=(autoscaling.GatewaySample(time=NOW - 1, gateway="g", held=held),))


@st.composite
def states(draw: st.DrawFn, spec: api.AutoscalingSpec) -> State:
    """A state some earlier decisions could have left."""
    state = State()
    for k in range(draw(st.integers(0, 3))):
        before = draw(situations())
        step = replace(before, now=NOW - 40 + 10 * k)
        state = decide(spec, step, state).state
    return state


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_bounds_are_never_crossed(data: st.DataObject) -> None:
    s = data.draw(specs())
    decision = decide(s, data.draw(situations()), data.draw(states(s)))
    assert s.minReplicas <= decision.desired <= s.maxReplicas


@settings(max_examples=150, deadline=None)
@given(st.data(), st.floats(0, 50), st.floats(0, 50))
def test_more_load_never_asks_for_fewer(data: st.DataObject, a: float, b: float) -> None:
    s = data.draw(specs())
    state = data.draw(states(s))
    base = data.draw(situations())
    count = len(base.ready)
    low, high = sorted((a, b))
    less = replace(base, samples=samples(NOW, count, low))
    more = replace(base, samples=samples(NOW, count, high))
    assert decide(s, less, state).desired <= decide(s, more, state).desired


@settings(max_examples=15, deadline=None)
@given(st.floats(1, 300), st.sampled_from((4.0, 16.0)), st.integers(0, 2**32 - 1))
def test_a_constant_noisy_load_settles(demand: float, target: float, seed: int) -> None:
    # Knative's defaults, no scale-down delay: the load is the time average of the fleet's
    # total, so moving it between replicas does not read as a change (windows.py).
    s = spec(target=target, maxReplicas=100)
    noise = random.Random(seed)
    current, state = 1, State()
    window: list[autoscaling.Sample] = []
    seen: list[int] = []
    for k in range(400):
        now = NOW + 2 * k
        window = [x for x in window if x.time > now - 60]  # gone replicas' samples too
        window += [
            autoscaling.Sample(now, r, running=demand / current * noise.uniform(0.9, 1.1))
            for r in sorted(names(current))
        ]
        step = autoscaling.Inputs(now, current, names(current), 0, window, last_request_time=now)
        decision = decide(s, step, state)
        current, state = decision.desired, decision.state
        seen.append(current)
    assert len(set(seen[200:])) == 1, seen[200:]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.floats(2.0, 10.0), st.integers(1, 60))
def test_panic_enters_at_the_threshold_and_leaves_a_stable_window_later(
    ready: int, factor: float, calm_after: int
) -> None:
    s = spec(target=4, maxReplicas=1000)
    burst = inputs(NOW, current=ready, per_replica=4 * factor)
    entered = decide(s, burst, State())
    assert entered.mode == "panic" and entered.desired >= ready
    last_over = NOW + calm_after
    state = decide(
        s,
        replace(burst, now=last_over, samples=samples(last_over, ready, 4 * factor)),
        entered.state,
    ).state
    calm = inputs(last_over + 59.9, current=entered.desired, ready=ready, per_replica=1.0)
    assert decide(s, calm, state).mode == "panic"
    assert decide(s, calm, state).desired >= entered.desired  # no scale-down while panicking
    calm = inputs(last_over + 60, current=entered.desired, ready=ready, per_replica=1.0)
    assert decide(s, calm, state).mode == "stable"


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 50))
def test_a_held_request_scales_from_zero(data: st.DataObject, held: int) -> None:
    s = data.draw(specs()).model_copy(update={"minReplicas": 0})
    gateway = (autoscaling.GatewaySample(time=NOW - 5, gateway="g", held=held),)
    step = autoscaling.Inputs(NOW, 0, frozenset(), 0, (), gateway, last_request_time=None)
    decision = decide(s, step, data.draw(states(s)))
    assert decision.desired >= 1


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 2000), st.integers(1, 8))
def test_idleness_scales_to_zero(idle: float, current: int) -> None:
    s = spec(minReplicas=0, scaleToZeroAfterSeconds=300)
    state = State()
    for k in range(4):  # the scale-down rate halves at most per decision
        now = NOW + 2 * k
        step = inputs(now, current=current, per_replica=0.0, last_request_time=now - idle)
        decision = decide(s, step, state)
        current, state = decision.desired, decision.state
    assert current == (0 if idle >= 300 else 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 5), st.floats(0, 200), st.sampled_from((1.5, 2.0, 4.0)))
def test_replicas_in_flight_do_not_compound(ready: int, load: float, rate: float) -> None:
    s = spec(
        target=4, maxScaleUpRate=rate, maxReplicas=1000, objectives={"ttft": {"targetSeconds": 0.1}}
    )
    current, state = max(1, ready), State()
    bound = max(current, math.ceil(max(1, ready) * rate))
    for k in range(20):  # none of the new replicas ever becomes Ready
        now = NOW + 2 * k
        step = inputs(
            now,
            current=current,
            ready=ready,
            starting=current - ready,
            samples=samples(now, ready, load, ttft=1.0),
        )
        decision = decide(s, step, state)
        current, state = decision.desired, decision.state
        assert current <= bound


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_forecast_never_lowers_the_reactive_answer(data: st.DataObject) -> None:
    s = data.draw(specs())
    predictive = s.model_copy(update={"mode": "predictive"})
    reactive = s.model_copy(update={"mode": "reactive"})
    step = data.draw(situations())
    history = data.draw(st.lists(st.floats(0, 500), max_size=40))
    state = replace(
        data.draw(states(reactive)),
        history=tuple((NOW - 10 * (len(history) - i), v) for i, v in enumerate(history)),
    )
    assert decide(predictive, step, state).desired >= decide(reactive, step, state).desired


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 100), st.floats(0.01, 2.0), st.sampled_from((30.0, 60.0, 120.0)))
def test_a_forecast_provisions_ahead_of_a_ramp(start: float, slope: float, ahead: float) -> None:
    s = spec(
        target=10,
        mode="predictive",
        maxReplicas=10_000,
        predictive={"coldStartSeconds": ahead},
    )
    current, state = 1, State()
    for k in range(12):  # one decision per 10 s bucket, the total rising by `slope` per second
        now = NOW + 10 * k
        total = start + slope * 10 * k
        sampled = [
            autoscaling.Sample(now, r, running=total / current) for r in sorted(names(current))
        ]
        step = autoscaling.Inputs(now, current, names(current), 0, sampled, last_request_time=now)
        decision = decide(s, step, state)
        current, state = decision.desired, decision.state
    # Ready when the load arrives: enough replicas for the total `ahead` seconds from now.
    assert current * 10 >= (total + slope * ahead) * (1 - 1e-9)
