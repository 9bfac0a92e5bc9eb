"""Each rule of the autoscaling policy, in virtual time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from inferplane.policy import autoscaling
from inferplane.policy.autoscaling import State, decide
from tests.unit.policy.autoscaling.support import inputs, names, samples, spec

NOW = 10_000.0


def test_stable_window_sizes_by_total_over_target() -> None:
    decision = decide(spec(target=4), inputs(NOW, current=2, per_replica=6.0), State())
    assert (decision.desired, decision.mode, decision.metric) == (3, "stable", "concurrency")
    assert decision.value == 6.0 and decision.target == 4.0
    assert decision.reason == "concurrency 6 per replica over target 4 (stable window)"


def test_each_metric_reads_its_sample_field() -> None:
    sampled = [
        autoscaling.Sample(time=NOW, replica="r0", rps=25.0, tokens_per_second=2500.0),
        autoscaling.Sample(time=NOW, replica="r0", kv_cache_usage=1.6, waiting=8.0),
    ]
    for metric, value in (("rps", 12.5), ("tokensPerSecond", 1250.0), ("kvCacheUsage", 0.8)):
        step = inputs(NOW, current=1, samples=sampled)
        assert decide(spec(metric=metric), step, State()).value == value
    assert (
        decide(spec(metric="waiting"), inputs(NOW, current=1, samples=sampled), State()).value == 4
    )


def test_the_load_is_the_time_average_of_the_total_whoever_served_it() -> None:
    """A sample stands for its replica's load since that replica's previous sample; one older
    than the window counts nothing, a replica gone half-way counts half."""
    every_5s = [NOW - k * 5.0 for k in range(12)]  # the last minute, agent-style
    sampled = [autoscaling.Sample(time=t, replica="r0", running=4.0) for t in every_5s]
    sampled.append(autoscaling.Sample(time=NOW - 61, replica="r0", running=400.0))
    decision = decide(spec(target=4), inputs(NOW, current=1, samples=sampled), State())
    assert decision.value == pytest.approx(4.0) and decision.desired == 1
    # r1 served 8 for the first half of the window, then was scaled away: its load moved
    # to r0, so the total over the window is the same 8, not 4.
    moved = [
        autoscaling.Sample(time=t, replica="r0", running=8.0 if t > NOW - 30 else 0.0)
        for t in every_5s
    ]
    moved += [
        autoscaling.Sample(time=t, replica="r1", running=8.0) for t in every_5s if t <= NOW - 30
    ]
    steady = decide(spec(target=4), inputs(NOW, current=2, ready=1, samples=moved), State())
    assert steady.value == pytest.approx(8.0, rel=0.1), "a scale-down is not a fall in load"


def test_held_requests_add_to_concurrency() -> None:
    gateway = (
        autoscaling.GatewaySample(time=NOW - 10, gateway="g", held=50),
        autoscaling.GatewaySample(time=NOW - 1, gateway="g", held=8),
    )
    step = inputs(NOW, current=1, per_replica=0.0, gateway=gateway)
    assert decide(spec(target=4), step, State()).desired == 2


def test_rps_from_gateway_arrivals_when_nothing_runs() -> None:
    gateway = [autoscaling.GatewaySample(time=NOW - k, gateway="g", arrivals=30) for k in range(60)]
    step = inputs(NOW, current=0, ready=0, gateway=gateway)
    assert decide(spec(metric="rps", target=10, minReplicas=0), step, State()).desired == 3


def test_unknown_load_keeps_current() -> None:
    decision = decide(spec(), inputs(NOW, current=3, samples=[]), State())
    assert decision.desired == 3
    assert decision.reason == "no samples from ready replicas yet: keeping 3"


def test_scale_down_is_limited_by_the_rate() -> None:
    decision = decide(spec(target=4), inputs(NOW, current=8, per_replica=0.1), State())
    assert decision.desired == 4


def test_scale_up_is_limited_by_the_rate_on_ready_replicas() -> None:
    step = inputs(NOW, current=2, per_replica=40.0)
    assert decide(spec(target=4, maxScaleUpRate=1.5, maxReplicas=100), step, State()).desired == 3


def test_tolerance_keeps_current_near_the_target() -> None:
    assert decide(spec(target=4), inputs(NOW, current=4, per_replica=4.3), State()).desired == 4
    assert decide(spec(target=4), inputs(NOW, current=4, per_replica=4.5), State()).desired == 5


def test_panic_enters_at_the_threshold_and_never_scales_down() -> None:
    s = spec(target=4, maxReplicas=100)
    quiet = samples(NOW - 8, 2, 4.0, seconds=52)
    burst = samples(NOW, 2, 16.0, seconds=4)  # the panic window holds only the burst
    first = decide(s, inputs(NOW, current=2, samples=quiet + burst), State())
    assert first.mode == "panic" and first.state.panic_since == NOW
    assert first.desired == 8 and "(panic window)" in first.reason
    # The burst ebbs: still panicking, the most asked for stays.
    later = decide(s, inputs(NOW + 10, current=8, ready=2, per_replica=4.0), first.state)
    assert later.mode == "panic" and later.desired == 8


def test_panic_below_the_threshold_does_not_enter() -> None:
    s = spec(target=4, maxReplicas=100)
    burst = samples(NOW, 2, 7.9, seconds=4)
    assert decide(s, inputs(NOW, current=2, samples=burst), State()).mode == "stable"


def test_panic_lasts_a_stable_window_after_it_was_last_over() -> None:
    s = spec(target=4, maxReplicas=100)
    state = decide(s, inputs(NOW, current=2, per_replica=16.0), State()).state
    state = decide(s, inputs(NOW + 30, current=8, ready=2, per_replica=16.0), state).state
    assert state.panic_since == NOW and state.panic_last_over == NOW + 30
    calm = inputs(NOW + 89, current=8, ready=8, per_replica=1.0)
    assert decide(s, calm, state).mode == "panic"
    over = decide(s, replace(calm, now=NOW + 90), state)
    assert over.mode == "stable" and over.state.max_panic_desired == 0
    assert over.desired == 4  # the scale-down rate halves at most


def test_latency_over_target_scales_by_the_ratio() -> None:
    s = spec(target=16, objectives={"ttft": {"targetSeconds": 0.5}})
    step = inputs(NOW, current=2, per_replica=8.0)
    step = replace(step, samples=[replace(x, ttft=1.2) for x in step.samples])
    decision = decide(s, step, State())
    assert (decision.desired, decision.metric, decision.value, decision.target) == (
        5,
        "ttft",
        1.2,
        0.5,
    )
    assert decision.reason == "ttft p90 1.2 s over target 0.5 s"


def test_latency_in_the_comfort_band_holds_and_under_it_lets_load_decide() -> None:
    s = spec(target=16, objectives={"tpot": {"targetSeconds": 0.1, "comfort": 0.7}})
    step = inputs(NOW, current=4, per_replica=1.0)
    held = replace(step, samples=[replace(x, tpot=0.08) for x in step.samples])
    assert decide(s, held, State()).desired == 4
    assert decide(s, held, State()).metric == "tpot"
    free = replace(step, samples=[replace(x, tpot=0.05) for x in step.samples])
    assert decide(s, free, State()).desired == 2


def test_latency_percentile_is_nearest_rank() -> None:
    from inferplane.policy.autoscaling import latency

    assert latency.percentile([float(v) for v in range(1, 11)], 90) == 9.0
    assert latency.percentile([3.0, 1.0, 2.0], 100) == 3.0
    assert latency.percentile([3.0, 1.0, 2.0], 1) == 1.0


def test_capacity_in_flight_holds_a_latency_signal() -> None:
    s = spec(target=16, objectives={"ttft": {"targetSeconds": 0.5}})
    step = inputs(NOW, current=5, ready=2, starting=3, per_replica=8.0)
    step = replace(step, samples=[replace(x, ttft=3.0) for x in step.samples])
    decision = decide(s, step, State())
    assert decision.desired == 5 and "while 3 replicas start: holding" in decision.reason


def test_a_ramp_while_replicas_start_does_not_keep_adding_replicas() -> None:
    s = spec(target=4, maxScaleUpRate=2, maxReplicas=100)
    current, state = 1, State()
    for k in range(10):  # the load keeps rising, no new replica becomes Ready
        step = inputs(
            NOW + 2 * k, current=current, ready=1, starting=current - 1, per_replica=40.0 + k
        )
        decision = decide(s, step, state)
        current, state = decision.desired, decision.state
    assert current == 2


def test_scale_down_delay_keeps_the_most_recommended() -> None:
    s = spec(target=4, scaleDownDelaySeconds=30)
    state = decide(s, inputs(NOW, current=4, per_replica=4.0), State()).state
    step = inputs(NOW + 10, current=4, per_replica=2.0)
    decision = decide(s, step, state)
    assert decision.desired == 4 and "scale-down to 2 delayed" in decision.reason
    later = inputs(NOW + 31, current=4, per_replica=2.0)
    assert decide(s, later, decision.state).desired == 2


def test_scale_down_delay_state_stays_small() -> None:
    s = spec(target=4, scaleDownDelaySeconds=300)
    state = State()
    for k in range(100):
        state = decide(s, inputs(NOW + 2 * k, current=4, per_replica=4.0), state).state
    assert len(state.recommendations) == 1


def test_scale_to_zero_after_idle() -> None:
    s = spec(minReplicas=0)
    idle = inputs(NOW, current=1, per_replica=0.0, last_request_time=NOW - 300)
    decision = decide(s, idle, State())
    assert decision.desired == 0 and decision.reason == "no requests for 300 s: scaling to zero"
    recent = replace(idle, last_request_time=NOW - 100)
    assert decide(s, recent, State()).desired == 1
    never = replace(idle, last_request_time=None)
    assert decide(s, never, State()).desired == 0
    assert decide(spec(minReplicas=1), idle, State()).desired == 1


def test_scale_from_zero_on_a_held_request() -> None:
    s = spec(minReplicas=0, stableWindowSeconds=60, scaleDownDelaySeconds=600)
    held = (autoscaling.GatewaySample(time=NOW - 30, gateway="g", held=1),)
    step = autoscaling.Inputs(
        now=NOW, current=0, ready=frozenset(), starting=0, samples=(), gateway=held
    )
    decision = decide(s, step, State())
    assert decision.desired == 1
    assert decision.reason == "held request at the gateway: scaling from zero"
    assert decide(spec(minReplicas=0, maxReplicas=5), step, State()).desired == 1


def test_bounds_clamp_and_say_so() -> None:
    decision = decide(
        spec(target=4, maxReplicas=3), inputs(NOW, current=2, per_replica=40.0), State()
    )
    assert decision.desired == 3 and decision.reason.endswith("; 20 held within bounds [1, 3]")


def test_disabled_keeps_current() -> None:
    decision = decide(spec(enabled=False), inputs(NOW, current=3, per_replica=100.0), State())
    assert (decision.desired, decision.reason) == (3, "autoscaling disabled")


def test_last_scale_time_is_set_when_the_replicas_change() -> None:
    assert (
        decide(
            spec(target=4), inputs(NOW, current=1, per_replica=8.0), State()
        ).state.last_scale_time
        == NOW
    )
    kept = decide(spec(target=4), inputs(NOW, current=1, per_replica=4.0), State())
    assert kept.state.last_scale_time is None


def test_predictive_raises_ahead_of_a_ramp() -> None:
    s = spec(target=10, mode="predictive", maxReplicas=100, predictive={"coldStartSeconds": 60})
    state, current = State(), 1
    for k in range(30):  # the total rises by 1 every 10 s
        now = NOW + 10 * k
        step = inputs(now, current=current, per_replica=(10.0 + k) / current)
        step = replace(step, samples=samples(now, current, (10.0 + k) / current, seconds=10))
        decision = decide(s, step, state)
        reactive = decide(spec(target=10, maxReplicas=100), step, State())
        assert decision.desired >= reactive.desired
        state, current = decision.state, decision.desired
    assert decision.metric == "forecast"
    assert decision.desired == 5  # forecast total 39 + 6 = 45 in 60 s; reactive says 4
    assert names(1) <= step.ready


def test_predictive_uses_the_measured_cold_start() -> None:
    from inferplane.policy.autoscaling import predictive

    s = spec(mode="predictive")
    step = inputs(NOW, current=1, cold_start_seconds=120.0)
    assert predictive.horizon_seconds(s, step) == 120.0
    assert predictive.horizon_seconds(s, replace(step, cold_start_seconds=None)) == 60.0
    assert (
        predictive.horizon_seconds(
            spec(mode="predictive", predictive={"coldStartSeconds": 5}), step
        )
        == 5.0
    )
