"""`inferplane load`'s bookkeeping on hand-built outcomes, and its usage errors. The runs
against a real server are in tests/integration/test_cli_load.py."""

from __future__ import annotations

import math

import pytest

from inferplane.cli import loadstats as stats
from inferplane.cli.loadstats import Outcome, Step
from tests.unit.cli.conftest import Cli

PROFILE = [Step(2, 10), Step(12, 10)]


def ok(end: float, *, took: float = 0.5, ttft: float | None = 0.1) -> Outcome:
    return Outcome(end - took, end, ttft=ttft)


def failed(end: float, error: str = "503") -> Outcome:
    return Outcome(end - 0.01, end, error=error)


def test_steps_parse_into_clients_and_seconds() -> None:
    assert stats.parse_steps("2:60,12:120, 2:0.5") == [Step(2, 60), Step(12, 120), Step(2, 0.5)]
    assert stats.total(stats.parse_steps("2:60,12:120")) == 180


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("x:1", "must be numbers"),
        ("2:y", "must be numbers"),
        ("0:10", "at least 1 client"),
        ("2:0", "more than 0 s"),
        ("2:-5", "more than 0 s"),
        ("2:inf", "more than 0 s"),
        ("3", "not CLIENTS:SECONDS"),
        ("2:60,", "not CLIENTS:SECONDS"),
        ("", "not CLIENTS:SECONDS"),
    ],
)
def test_bad_steps_are_refused_naming_the_part(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        stats.parse_steps(text)


def test_percentiles_interpolate_between_ranks() -> None:
    assert stats.percentile([], 50) is None
    assert stats.percentile([7.0], 90) == 7.0
    values = [float(v) for v in (10, 1, 9, 2, 8, 3, 7, 4, 6, 5)]
    assert stats.percentile(values, 50) == pytest.approx(5.5)
    assert stats.percentile(values, 90) == pytest.approx(9.1)
    assert stats.percentile(values, 0) == 1.0 and stats.percentile(values, 100) == 10.0


def test_the_step_at_a_time_holds_its_last_from_the_end_on() -> None:
    assert [stats.step_at(PROFILE, t) for t in (0, 9.99, 10, 19.9, 20, 99)] == [0, 0, 1, 1, 1, 1]


def test_each_step_sums_up_what_finished_in_it() -> None:
    outcomes = [
        ok(1, took=0.2, ttft=0.05),
        ok(2, took=0.4, ttft=0.15),
        failed(3, "401"),
        ok(12, took=1.0, ttft=0.3),
        failed(15),
        failed(16),
        ok(20.5, took=1.0, ttft=0.3),  # in flight at the end: the last step's
    ]
    first, second = stats.per_step(PROFILE, outcomes, elapsed=20)
    assert (first.clients, first.seconds, first.requests) == (2, 10, 2)
    assert first.errors == {"401": 1}
    assert first.rate == pytest.approx(0.2)
    assert first.ttft_p50 == pytest.approx(0.1) and first.latency_p90 == pytest.approx(0.38)
    assert (second.clients, second.requests, second.errors) == (12, 2, {"503": 2})
    assert second.ttft_p50 == pytest.approx(0.3)
    whole = stats.overall(outcomes, elapsed=20)
    assert (whole.requests, whole.errors, whole.rate) == (4, {"401": 1, "503": 2}, 0.2)


def test_a_run_stopped_early_sums_up_only_the_steps_it_reached() -> None:
    outcomes = [ok(1), ok(11), ok(14)]
    summaries = stats.per_step(PROFILE, outcomes, elapsed=15)
    assert [(s.seconds, s.requests) for s in summaries] == [(10, 1), (5, 2)]
    (only,) = stats.per_step(PROFILE, outcomes, elapsed=4)
    assert (only.seconds, only.requests, only.rate) == (4, 1, 0.25)
    (nothing,) = stats.per_step(PROFILE, [], elapsed=0)
    assert (nothing.requests, nothing.rate, nothing.ttft_p50) == (0, 0.0, None)


def test_the_series_has_a_row_per_second() -> None:
    outcomes = [ok(0.5, ttft=0.1), ok(0.9, ttft=0.3), failed(1.5), ok(10.2, ttft=None)]
    rows = stats.series(PROFILE, outcomes, elapsed=10.5)
    assert len(rows) == 11
    assert rows[0] == {
        "time": 0,
        "clients": 2,
        "completed": 2,
        "errors": 0,
        "ttft_p50_ms": 200.0,
        "ttft_p90_ms": 280.0,
    }
    assert (rows[1]["completed"], rows[1]["errors"], rows[1]["ttft_p50_ms"]) == (0, 1, None)
    assert (rows[10]["clients"], rows[10]["completed"]) == (12, 1)


def test_recent_numbers_look_at_their_windows_only() -> None:
    outcomes = [ok(1, ttft=9.0), ok(20, ttft=0.1), ok(27, ttft=0.2), ok(28, ttft=0.3), failed(29)]
    now = stats.recent(outcomes, 30, rate_window=5, ttft_window=10)
    assert now.rate == pytest.approx(2 / 5)
    assert now.ttft_p50 == pytest.approx(0.2) and now.ttft_p90 == pytest.approx(0.28)
    start = stats.recent([ok(1), ok(1.5)], 2, rate_window=5, ttft_window=10)
    assert start.rate == pytest.approx(1.0)  # over the 2 s so far, not 5
    assert stats.recent([], 0, rate_window=5, ttft_window=10).rate == 0.0


def test_summaries_in_json_are_in_milliseconds() -> None:
    summary = stats.per_step([Step(1, 2)], [ok(1, took=0.25, ttft=0.125)], elapsed=2)[0]
    row = stats.as_json(summary)
    assert row["latency_p50_ms"] == 250.0 and row["ttft_p90_ms"] == 125.0
    assert row["requests_per_second"] == 0.5 and not math.isnan(row["seconds"])


def test_steps_with_concurrency_or_duration_is_a_usage_error(cli: Cli) -> None:
    result = cli("load", "-m", "demo", "--steps", "2:10", "-c", "3", "-d", "5")
    assert result.exit_code == 1
    assert "--steps sets the clients and the time: drop --concurrency and --duration" in (
        result.output
    )


def test_bad_steps_are_a_usage_error_naming_the_flag(cli: Cli) -> None:
    result = cli("load", "-m", "demo", "--steps", "0:10")
    assert result.exit_code == 2
    assert "--steps" in result.output and "at least 1 client" in result.output


def test_the_help_has_examples(cli: Cli) -> None:
    result = cli("load", "--help")
    assert result.exit_code == 0
    assert "inferplane load -m demo --steps 2:30,12:60,2:30" in result.output
