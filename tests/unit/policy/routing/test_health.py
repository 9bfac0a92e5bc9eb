"""Recent outcomes: error rate over the window, trimming, p99 time to first byte."""

from __future__ import annotations

from inferplane.policy.routing.health import Outcomes, Window


def test_error_rate_over_the_window() -> None:
    w = Window(span=10.0)
    assert w.error_rate(0.0) == 0.0, "no outcomes, no errors"
    for i, ok in enumerate([True, False, True, False]):
        w.add(float(i), ok, 0.1)
    assert w.count(3.0) == 4
    assert w.error_rate(3.0) == 0.5


def test_old_outcomes_leave_the_window() -> None:
    w = Window(span=10.0)
    w.add(0.0, False, 0.1)
    w.add(1.0, False, 0.1)
    w.add(5.0, True, 0.1)
    assert w.error_rate(10.0) == 2 / 3, "an outcome exactly span old is still in"
    assert w.count(10.5) == 2
    assert w.error_rate(10.5) == 0.5
    assert w.error_rate(11.5) == 0.0 and w.errors == 0
    assert w.count(100.0) == 0 and w.error_rate(100.0) == 0.0


def test_adding_trims_too() -> None:
    w = Window(span=1.0)
    w.add(0.0, False, 0.0)
    w.add(5.0, True, 0.0)
    assert w.errors == 0


def test_p99_of_successful_requests_only() -> None:
    w = Window(span=60.0)
    for i in range(10):
        w.add(0.0, True, 0.1 * (i + 1))
    w.add(0.0, False, 50.0)
    assert w.p99(0.0) == 1.0


def test_p99_ignores_the_slowest_one_percent() -> None:
    w = Window(span=60.0)
    for _ in range(99):
        w.add(0.0, True, 0.1)
    w.add(0.0, True, 10.0)
    assert w.p99(0.0) == 0.1, "one request in a hundred is the 1% the p99 leaves out"
    w2 = Window(span=60.0)
    for _ in range(98):
        w2.add(0.0, True, 0.1)
    w2.add(0.0, True, 10.0)
    w2.add(0.0, True, 10.0)
    assert w2.p99(0.0) == 10.0, "two in a hundred are more than 1%"


def test_p99_of_nothing_is_zero() -> None:
    assert Window().p99(0.0) == 0.0


def test_p99_is_recomputed_at_most_once_a_second_and_then_trimmed() -> None:
    w = Window(span=10.0)
    w.add(0.0, True, 5.0)
    assert w.p99(0.0) == 5.0
    w.add(0.5, True, 9.0)
    assert w.p99(0.5) == 5.0, "cached within the second"
    assert w.p99(1.0) == 9.0
    w.add(10.8, True, 1.0)
    assert w.p99(11.0) == 1.0, "the slow ones left the window"


def test_outcomes_feed_an_endpoints_and_its_services_windows() -> None:
    outcomes = Outcomes()
    outcomes.record("svc", "a", 10.0, 0.0, False, 0.0)
    outcomes.record("svc", "b", 10.0, 1.0, True, 0.2)
    assert outcomes.error_rate("a", 1.0) == 1.0 and outcomes.error_rate("b", 1.0) == 0.0
    assert outcomes.error_rate("never-tried", 1.0) == 0.0
    assert outcomes.services["svc"].count(1.0) == 2 and outcomes.services["svc"].span == 10.0
    assert outcomes.error_rate("a", 20.0) == 0.0, "the failure left the window"
