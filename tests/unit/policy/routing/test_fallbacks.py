"""The fallback chain and the health verdict that skips an unhealthy step of it."""

from __future__ import annotations

from typing import Any

from inferplane.api import services
from inferplane.policy.routing import fallbacks
from inferplane.policy.routing.health import Window


def bounds(**given: Any) -> services.FallbackTriggers:
    return services.FallbackTriggers.model_validate({"minRequests": 4} | given)


def window(outcomes: list[tuple[bool, float]], span: float = 30.0) -> Window:
    w = Window(span)
    for i, (ok, ttfb) in enumerate(outcomes):
        w.add(100.0 + i * 0.01, ok, ttfb)
    return w


def steps(*targets: str) -> list[services.Fallback]:
    """Steps from kind/name targets, e.g. service/small, endpoint/openai."""
    return [services.Fallback.model_validate(dict([t.split("/")])) for t in targets]


def test_the_chain_is_the_service_then_each_step_that_exists() -> None:
    services_by_name = {("ns", "small"): "svc:small", ("ns", "tiny"): "svc:tiny"}
    endpoints_by_name = {("ns", "openai"): "ep:openai", ("other", "gone"): "ep:elsewhere"}
    chain = fallbacks.chain(
        "svc:main",
        steps(
            "service/small", "service/missing", "endpoint/openai", "endpoint/gone", "service/tiny"
        ),
        "ns",
        services_by_name=services_by_name,
        endpoints_by_name=endpoints_by_name,
    )
    assert list(chain) == ["svc:main", "svc:small", "ep:openai", "svc:tiny"]


def test_without_steps_the_chain_is_the_service_alone() -> None:
    chain = fallbacks.chain("svc", [], "ns", services_by_name={}, endpoints_by_name={})
    assert list(chain) == ["svc"]


def test_every_step_but_the_last_is_judged() -> None:
    assert [fallbacks.judged(i, 3) for i in range(3)] == [True, True, False]
    assert not fallbacks.judged(0, 1), "a service without a fallback is always tried"


def test_the_verdict_needs_min_requests() -> None:
    b = bounds(errorRate=0.5)
    assert fallbacks.verdict(b, None, 100.0) is None, "no outcomes yet"
    w = window([(False, 0.0)] * 3)
    assert fallbacks.verdict(b, w, 100.1) is None, "3 < minRequests"
    w.add(100.05, False, 0.0)
    assert fallbacks.verdict(b, w, 100.1) == "error rate 100% ≥ 50%"
    assert fallbacks.verdict(b, w, 200.0) is None, "the failures left the window"


def test_the_error_rate_at_the_bound_skips() -> None:
    b = bounds(errorRate=0.5)
    assert fallbacks.verdict(b, window([(True, 0.1), (False, 0.0)] * 2), 100.1) is not None
    assert fallbacks.verdict(b, window([(True, 0.1)] * 3 + [(False, 0.0)] * 2), 100.1) is None
    three_of_six = window([(True, 0.1)] * 3 + [(False, 0.0)] * 3)
    assert fallbacks.verdict(b, three_of_six, 100.1) == "error rate 50% ≥ 50%"


def test_a_null_error_rate_never_skips() -> None:
    assert fallbacks.verdict(bounds(errorRate=None), window([(False, 0.0)] * 10), 100.2) is None


def test_the_p99_first_byte_above_the_bound_skips() -> None:
    b = bounds(errorRate=None, p99LatencySeconds=1.0)
    at = window([(True, 0.2)] * 3 + [(True, 1.0)])
    assert fallbacks.verdict(b, at, 100.1) is None, "at the bound is not above it"
    above = window([(True, 0.2)] * 3 + [(True, 2.5)])
    assert fallbacks.verdict(b, above, 100.1) == "p99 first byte 2.50 s > 1 s"
