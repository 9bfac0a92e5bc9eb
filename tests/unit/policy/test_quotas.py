"""The quota ledger: token buckets, budgets per period, seeding and persistence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.api import apikeys
from inferplane.policy import quotas

KEY = "key default/ci-bot"
TEAM = "quota default/team"
NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2025, 3, 15, tzinfo=UTC).timestamp()


def one(limits: quotas.Limits, subject: str = KEY) -> list[tuple[str, quotas.Limits]]:
    return [(subject, limits)]


def test_limits_of_a_spec() -> None:
    rates = apikeys.RateLimits(requestsPerMinute=60, tokensPerMinute=1000)
    budget = apikeys.Budget(cost=5.0, period="month")
    assert quotas.Limits.of(rates, budget) == quotas.Limits(60, 1000, 5.0, None, "month")
    assert quotas.Limits.of(apikeys.RateLimits(), None).unlimited()
    assert not quotas.Limits(budget_tokens=10).unlimited()
    with pytest.raises(ValueError, match="period"):
        quotas.Limits(period="week")


def test_unlimited_subjects_always_admit_and_leave_no_state() -> None:
    ledger = quotas.Ledger()
    for i in range(1000):
        assert ledger.admit(one(quotas.Limits()), NOON + i * 0.001) is None
    assert ledger.to_json()["subjects"] == {}


def test_a_full_bucket_admits_a_burst_then_says_when_to_retry() -> None:
    ledger, limits = quotas.Ledger(), quotas.Limits(requests_per_minute=60)
    assert all(ledger.admit(one(limits), NOON) is None for _ in range(60))
    denied = ledger.admit(one(limits), NOON)
    assert denied is not None and denied.retry_after == pytest.approx(1.0)
    assert (denied.subject, denied.limit, denied.kind) == (KEY, "60 requests per minute", "rate")
    assert denied.error_type == "rate_limit_exceeded"
    expected = "rate limit of key default/ci-bot exceeded: 60 requests per minute; retry after"
    assert denied.message() == f"{expected} 1.0 s"
    assert ledger.admit(one(limits), NOON + 1.0) is None


def test_every_subject_must_admit_before_any_request_is_taken() -> None:
    ledger = quotas.Ledger()
    key, team = quotas.Limits(requests_per_minute=10), quotas.Limits(requests_per_minute=1)
    checks = [(KEY, key), (TEAM, team)]
    assert ledger.admit(checks, NOON) is None
    denied = ledger.admit(checks, NOON)
    assert denied is not None and denied.subject == TEAM
    # The refused request took nothing from the key: nine more fit on the key alone.
    assert all(ledger.admit(one(key), NOON) is None for _ in range(9))
    assert ledger.admit(one(key), NOON) is not None


def test_tokens_go_into_debt_and_block_until_refilled() -> None:
    ledger, limits = quotas.Ledger(), quotas.Limits(tokens_per_minute=600)
    assert ledger.admit(one(limits), NOON) is None
    ledger.record(one(limits), NOON, tokens=1200, cost=0.0)  # 600 in debt, refills 10 a second
    denied = ledger.admit(one(limits), NOON)
    assert denied is not None and denied.limit == "600 tokens per minute"
    assert denied.retry_after == pytest.approx(60.0)
    assert ledger.admit(one(limits), NOON + 59.9) is not None
    assert ledger.admit(one(limits), NOON + 60.0) is None


def test_a_spent_daily_budget_waits_for_utc_midnight() -> None:
    ledger, limits = quotas.Ledger(), quotas.Limits(budget_cost=5.0)
    ledger.record(one(limits), NOON, tokens=100, cost=5.0)
    denied = ledger.admit(one(limits), NOON)
    assert denied == quotas.Denied(KEY, "$5.00 per day", 12 * 3600.0, kind="budget")
    assert denied.error_type == "insufficient_quota"
    assert (
        denied.message() == "budget of key default/ci-bot spent: $5.00 per day; retry after 12.0 h"
    )
    assert ledger.usage(KEY, limits, MIDNIGHT - 0.001) == (100, 5.0)
    assert ledger.usage(KEY, limits, MIDNIGHT) == (0, 0.0)
    assert ledger.admit(one(limits), MIDNIGHT) is None


def test_a_total_budget_never_renews_and_outweighs_any_wait() -> None:
    ledger = quotas.Ledger()
    budget, rate = quotas.Limits(budget_tokens=1000, period="total"), quotas.Limits(1)
    ledger.admit(one(rate, TEAM), NOON)
    ledger.record(one(budget), NOON, tokens=1000, cost=0.0)
    denied = ledger.admit([(TEAM, rate), (KEY, budget)], NOON + 1)
    assert denied is not None and denied.subject == KEY and denied.retry_after is None
    assert denied.message().endswith("1,000 tokens in total; it does not renew")


@pytest.mark.parametrize(
    ("day", "next_month"),
    [
        (datetime(2025, 1, 31, 23, 59), datetime(2025, 2, 1)),
        (datetime(2024, 12, 31), datetime(2025, 1, 1)),
    ],
)
def test_monthly_budgets_renew_on_the_first(day: datetime, next_month: datetime) -> None:
    now, renewal = day.replace(tzinfo=UTC).timestamp(), next_month.replace(tzinfo=UTC).timestamp()
    ledger, limits = quotas.Ledger(), quotas.Limits(budget_cost=1.0, period="month")
    ledger.record(one(limits), now, tokens=10, cost=2.0)
    denied = ledger.admit(one(limits), now)
    assert denied is not None and denied.retry_after == renewal - now
    assert ledger.admit(one(limits), renewal) is None


def test_seed_keeps_the_larger_usage_of_the_same_period() -> None:
    ledger, limits = quotas.Ledger(), quotas.Limits(budget_tokens=1000)
    day = MIDNIGHT - quotas.DAY_SECONDS
    ledger.seed(KEY, tokens=300, cost=1.0, period_start=day)
    assert ledger.usage(KEY, limits, NOON) == (300, 1.0)
    ledger.record(one(limits), NOON, tokens=50, cost=0.5)
    ledger.seed(KEY, tokens=200, cost=2.0, period_start=day)
    assert ledger.usage(KEY, limits, NOON) == (350, 2.0)
    ledger.seed(KEY, tokens=999, cost=9.0, period_start=day - quotas.DAY_SECONDS)  # older: ignored
    assert ledger.usage(KEY, limits, NOON) == (350, 2.0)
    ledger.seed(KEY, tokens=5, cost=0.1, period_start=MIDNIGHT)  # newer: replaces
    assert ledger.usage(KEY, limits, MIDNIGHT + 1) == (5, 0.1)


def test_seeded_usage_of_a_past_period_resets() -> None:
    ledger, limits = quotas.Ledger(), quotas.Limits(budget_tokens=100)
    ledger.seed(KEY, tokens=100, cost=0.0, period_start=MIDNIGHT - 2 * quotas.DAY_SECONDS)
    assert ledger.admit(one(limits), NOON) is None


def test_forget_drops_subjects_not_kept() -> None:
    ledger, limits = quotas.Ledger(), quotas.Limits(requests_per_minute=5)
    ledger.admit([(KEY, limits), (TEAM, limits)], NOON)
    ledger.forget([TEAM])
    assert set(ledger.to_json()["subjects"]) == {TEAM}


@pytest.mark.parametrize(
    "data", [{}, {"version": 2, "subjects": {}}, {"version": 1, "subjects": []}]
)
def test_from_json_refuses_what_is_not_a_ledger(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        quotas.Ledger.from_json(data)


def test_money_shows_cents_or_what_matters_below_them() -> None:
    assert [quotas.money(x) for x in (5, 0.5, 0.005, 0)] == ["$5.00", "$0.50", "$0.005", "$0.00"]


# Properties over generated limits and traffic, at epoch-scale times so float rounding shows.

rpms = st.integers(1, 600)
gaps = st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=300)
op = st.tuples(
    st.floats(0, 30, allow_nan=False),  # seconds since the previous operation
    st.booleans(),  # admit (True) or record
    st.integers(0, 5000),  # tokens recorded
    st.floats(0, 2, allow_nan=False),  # cost recorded
)
limits_st = st.builds(
    quotas.Limits,
    requests_per_minute=st.none() | rpms,
    tokens_per_minute=st.none() | st.integers(1, 20000),
    budget_cost=st.none() | st.floats(0.5, 50),
    budget_tokens=st.none() | st.integers(100, 100000),
    period=st.sampled_from(quotas.PERIODS),
)


def replay(
    limits: quotas.Limits, ops: list[tuple[float, bool, int, float]]
) -> tuple[quotas.Ledger, float]:
    ledger, now = quotas.Ledger(), NOON
    for gap, admit, tokens, cost in ops:
        now += gap
        if admit:
            ledger.admit(one(limits), now)
        else:
            ledger.record(one(limits), now, tokens, cost)
    return ledger, now


@settings(max_examples=150)
@given(st.integers(1, 60), gaps)
def test_no_window_admits_more_than_a_bucket_and_a_minute_of_refill(
    rpm: int, gap_list: list[float]
) -> None:
    ledger, limits, now, admitted = quotas.Ledger(), quotas.Limits(rpm), NOON, []
    for gap in gap_list:
        now += gap / 10
        if ledger.admit(one(limits), now) is None:
            admitted.append(now)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            window = admitted[j] - start + quotas.TIME_SLACK
            assert j - i + 1 <= rpm + rpm * window / 60 + 1e-9
    window_60 = [sum(1 for t in admitted if s <= t < s + 60) for s in admitted]
    assert max(window_60) <= 2 * rpm


@settings(max_examples=200)
@given(limits_st, st.lists(op, max_size=40))
def test_retry_after_is_exact(
    limits: quotas.Limits, ops: list[tuple[float, bool, int, float]]
) -> None:
    ledger, now = replay(limits, ops)
    saved = ledger.to_json()
    denied = ledger.admit(one(limits), now)
    if denied is None or denied.retry_after is None:
        return
    retry = denied.retry_after
    assert quotas.Ledger.from_json(saved).admit(one(limits), now + retry) is None
    if retry > 1e-3:
        assert quotas.Ledger.from_json(saved).admit(one(limits), now + retry - 1e-3) is not None


@settings(max_examples=100)
@given(
    st.lists(st.tuples(st.floats(0, 3600), st.integers(0, 10**6), st.floats(0, 10)), max_size=30)
)
def test_recorded_usage_adds_up_within_a_day(records: list[tuple[float, int, float]]) -> None:
    ledger, limits = quotas.Ledger(), quotas.Limits(budget_cost=1e9)
    now, tokens, cost = MIDNIGHT - quotas.DAY_SECONDS, 0, 0.0
    for gap, used, spent in records:
        now = min(now + gap, MIDNIGHT - 1)
        ledger.record(one(limits), now, used, spent)
        tokens, cost = tokens + used, cost + spent
    assert ledger.usage(KEY, limits, now) == (tokens, pytest.approx(cost))


@settings(max_examples=100)
@given(st.integers(0, 20000), st.floats(0, quotas.DAY_SECONDS - 1e-3), st.integers(1, 10**6))
def test_daily_usage_rolls_over_at_utc_midnight(day: int, offset: float, tokens: int) -> None:
    start = day * quotas.DAY_SECONDS
    ledger, limits = quotas.Ledger(), quotas.Limits(budget_tokens=tokens)
    ledger.record(one(limits), start + offset, tokens, 1.0)
    assert ledger.usage(KEY, limits, start + quotas.DAY_SECONDS - 1e-3) == (tokens, 1.0)
    assert ledger.admit(one(limits), start + quotas.DAY_SECONDS - 1e-3) is not None
    assert ledger.usage(KEY, limits, start + quotas.DAY_SECONDS) == (0, 0.0)
    assert ledger.admit(one(limits), start + quotas.DAY_SECONDS) is None


@settings(max_examples=100)
@given(limits_st, st.lists(op, max_size=40), st.lists(st.floats(0, 120), max_size=10))
def test_a_saved_ledger_decides_as_the_live_one(
    limits: quotas.Limits, ops: list[tuple[float, bool, int, float]], later: list[float]
) -> None:
    live, now = replay(limits, ops)
    restored = quotas.Ledger.from_json(json.loads(json.dumps(live.to_json())))
    assert restored.to_json() == live.to_json()
    for gap in later:
        now += gap
        assert restored.admit(one(limits), now) == live.admit(one(limits), now)
        assert restored.usage(KEY, limits, now) == live.usage(KEY, limits, now)
