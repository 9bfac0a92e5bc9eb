"""Quantities, int-or-percent and the other small value types."""

from __future__ import annotations

from fractions import Fraction

import pytest

from inferplane.api import values


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("4", 4.0),
        ("500m", 0.5),
        ("80Gi", 80 * 2**30),
        ("1.5Ki", 1536.0),
        ("2k", 2000.0),
        ("1e3", 1000.0),
        ("16G", 16e9),
        (".5", 0.5),
    ],
)
def test_parse_quantity(text: str, number: float) -> None:
    assert values.parse_quantity(text) == pytest.approx(number)


@pytest.mark.parametrize("text", ["", "Gi", "80 GB", "1.2.3", "ten"])
def test_bad_quantity(text: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        values.parse_quantity(text)


@pytest.mark.parametrize(
    ("value", "total", "round_up", "count"),
    [(2, 10, True, 2), ("25%", 10, True, 3), ("25%", 10, False, 2), ("100%", 3, False, 3)],
)
def test_resolve_int_or_percent(value: int | str, total: int, round_up: bool, count: int) -> None:
    assert values.resolve_int_or_percent(value, total, round_up=round_up) == count


@pytest.mark.parametrize("value", [-1, "101%", "25", True, 1.5, "%"])
def test_bad_int_or_percent(value: object) -> None:
    with pytest.raises(ValueError):
        values.check_int_or_percent(value)


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, float("nan")])
def test_bad_scalar(value: object) -> None:
    with pytest.raises(ValueError):
        values.check_scalar(value)


def test_scalars_keep_their_type() -> None:
    assert [values.check_scalar(v) for v in ("x", 1, 1.5, True)] == ["x", 1, 1.5, True]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1e99999999", "exponent outside"),  # 10**N alone held the control plane for minutes
        ("1E400", "exponent outside"),  # was an OverflowError: a 500 on POST /pools
        ("9e308", "too large"),
    ],
)
def test_a_quantity_beyond_a_float_is_refused_at_once(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        values.parse_quantity(text)
    if match != "too large":
        with pytest.raises(ValueError, match=match):
            values.parse_quantity_exact(text)
    assert values.parse_quantity("1e308") == 1e308


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("80Gi", Fraction(80 * 2**30)),
        ("100m", Fraction(1, 10)),
        ("1.5k", Fraction(1500)),
        ("1E-2", Fraction(1, 100)),
        ("100000000000000001", Fraction(10**17 + 1)),
    ],
)
def test_parse_quantity_exact_does_not_round(text: str, exact: Fraction) -> None:
    assert values.parse_quantity_exact(text) == exact
    with pytest.raises(ValueError, match="is not a quantity"):
        values.parse_quantity_exact(text + "x")
