"""The Holt-Winters forecaster, by hand and on series it should track."""

from __future__ import annotations

import math

import pytest

from inferplane.policy.autoscaling import forecast


def test_hand_computed_holt() -> None:
    # l0 = 1, b0 = 1; t=1: l = .5*2 + .5*2 = 2, b = .3*1 + .7*1 = 1;
    # t=2: l = .5*4 + .5*3 = 3.5, b = .3*1.5 + .7*1 = 1.15; in 2 steps: 3.5 + 2.3 = 5.8.
    assert forecast.holt_winters([1.0, 2.0, 4.0], 0, 2) == pytest.approx(5.8)


def test_hand_computed_season() -> None:
    # m = 2: season means 1 and 2.25 -> trend .625; offsets -.1875 and .1875 around the
    # trend line; level at t=1 is 1.3125.
    # t=2: deseasoned 2.1875 -> l = .5*2.1875 + .5*1.9375 = 2.0625,
    # b = .3*.75 + .7*.625 = .6625, s0 = .3*(2 - 2.0625) + .7*(-.1875) = -.15.
    # t=3: deseasoned 2.3125 -> l = .5*2.3125 + .5*2.725 = 2.51875,
    # b = .3*.45625 + .7*.6625 = .600625.
    # One step ahead is bucket 4, season slot 0: 2.51875 + .600625 - .15 = 2.969375.
    assert forecast.holt_winters([0.5, 1.5, 2.0, 2.5], 2, 1) == pytest.approx(2.969375)


def test_short_and_empty_series() -> None:
    assert forecast.holt_winters([], 0, 3) == 0.0
    assert forecast.holt_winters([7.0], 0, 3) == 7.0


def test_a_linear_ramp_is_tracked_exactly() -> None:
    ramp = [5.0 + 2.0 * t for t in range(30)]
    assert forecast.holt_winters(ramp, 0, 6) == pytest.approx(5.0 + 2.0 * 35)


def test_a_ramp_with_a_sine_season_is_tracked() -> None:
    m = 12
    curve = [50 + 0.5 * t + 10 * math.sin(2 * math.pi * t / m) for t in range(5 * m)]
    for h in (1, 3, 7, 12):
        t = len(curve) - 1 + h
        expected = 50 + 0.5 * t + 10 * math.sin(2 * math.pi * t / m)
        assert forecast.holt_winters(curve, m, h) == pytest.approx(expected)


def test_a_season_is_used_only_with_two_whole_seasons() -> None:
    curve = [10 * math.sin(2 * math.pi * t / 12) for t in range(20)]
    assert forecast.holt_winters(curve, 12, 1) == forecast.holt_winters(curve, 0, 1)


def test_record_keeps_the_latest_value_of_a_bucket_and_drops_old_ones() -> None:
    history = forecast.record((), now=100.0, total=1.0, bucket=10, keep=30)
    history = forecast.record(history, now=105.0, total=2.0, bucket=10, keep=30)
    assert history == ((100.0, 2.0),)
    history = forecast.record(history, now=112.0, total=3.0, bucket=10, keep=30)
    assert history == ((100.0, 2.0), (110.0, 3.0))
    assert forecast.record(history, now=135.0, total=4.0, bucket=10, keep=30) == (
        (110.0, 3.0),
        (130.0, 4.0),
    )


def test_series_fills_missed_buckets_with_the_value_before() -> None:
    assert forecast.series(((0.0, 1.0), (30.0, 4.0), (40.0, 5.0)), bucket=10) == [1, 1, 1, 4, 5]
