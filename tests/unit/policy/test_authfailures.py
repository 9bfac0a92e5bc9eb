"""Failed authentications per source address: the bucket, its refill and the table's bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.policy import authfailures
from inferplane.policy.authfailures import AuthFailures


def fail(failures: AuthFailures, source: str, times: int, now: float = 0.0) -> None:
    for _ in range(times):
        failures.failed(source, now)


def test_an_address_that_never_failed_is_not_tracked() -> None:
    failures = AuthFailures()
    assert "10.0.0.1" not in failures.tracked
    assert failures.retry_after("10.0.0.1", 0.0) is None


def test_the_limit_of_failures_is_allowed_then_the_address_waits_for_one_refill() -> None:
    failures = AuthFailures(limit=10, window=60.0)
    fail(failures, "10.0.0.1", 9)
    assert failures.retry_after("10.0.0.1", 0.0) is None, "a 10th try is still allowed"
    fail(failures, "10.0.0.1", 1)
    assert failures.retry_after("10.0.0.1", 0.0) == 6, "one try per 6 s"
    assert failures.retry_after("10.0.0.1", 3.0) == 3
    assert failures.retry_after("10.0.0.1", 5.5) == 1, "whole seconds, rounded up"
    assert failures.retry_after("10.0.0.1", 6.0) is None
    assert failures.retry_after("10.0.0.2", 0.0) is None, "other addresses are not limited"


def test_a_refused_try_after_the_refill_empties_the_bucket_again() -> None:
    failures = AuthFailures(limit=2, window=10.0)
    fail(failures, "a", 2)
    failures.failed("a", 5.0)
    assert failures.retry_after("a", 5.0) == 5


def test_a_full_bucket_is_forgotten() -> None:
    failures = AuthFailures(limit=2, window=10.0)
    fail(failures, "old", 2)
    failures.failed("new", 10.0)
    assert list(failures.tracked) == ["new"], "old refilled: nothing to remember"


def test_the_table_is_bounded_and_drops_the_oldest_failure_first() -> None:
    failures = AuthFailures(limit=5, window=60.0, max_sources=3)
    for i, source in enumerate(["a", "b", "c", "d"]):
        failures.failed(source, float(i))
    assert list(failures.tracked) == ["b", "c", "d"]
    failures.failed("b", 4.0)
    failures.failed("e", 5.0)
    assert list(failures.tracked) == ["d", "b", "e"], "a failure moves its address to the end"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AuthFailures(limit=0)
    with pytest.raises(ValueError):
        AuthFailures(window=0)


@given(
    st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.floats(min_value=0, max_value=5)),
        max_size=200,
    )
)
def test_the_table_never_exceeds_its_bound_and_waits_never_exceed_one_refill(
    steps: list[tuple[str, float]],
) -> None:
    failures = AuthFailures(limit=3, window=30.0, max_sources=4)
    now = 0.0
    for source, advance in steps:
        now += advance
        failures.failed(source, now)
        assert len(failures) <= 4
        wait = failures.retry_after(source, now)
        assert wait is None or 1 <= wait <= 10


def test_the_defaults_are_ten_a_minute() -> None:
    assert (authfailures.LIMIT, authfailures.WINDOW_SECONDS) == (10, 60.0)
