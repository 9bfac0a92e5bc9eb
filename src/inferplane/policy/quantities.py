"""Kubernetes' CEL quantity library for device selectors: `quantity("80Gi")` and its methods.

Selectors written for Kubernetes DRA compare capacities with `compareTo`, `isGreaterThan` and
friends (k8s.io/apiserver/pkg/cel/library/quantity.go); these are the same functions over exact
rational numbers, so `quantity("1Gi").compareTo(quantity("1024Mi")) == 0` holds as it does
there. Methods are plain functions whose first argument is the receiver, which is how the CEL
library calls `q.add(x)`.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from celpy import celtypes

from inferplane.api import values

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Quantity:
    """An exact amount, as CEL sees a Kubernetes resource.Quantity."""

    __slots__ = ("value",)

    def __init__(self, value: Fraction) -> None:
        self.value = value

    @classmethod
    def parse(cls, text: str) -> Quantity:
        return cls(values.parse_quantity_exact(text))

    def __eq__(self, other: object) -> bool:
        # Kubernetes compares quantities semantically: 1Gi == 1024Mi.
        if not isinstance(other, Quantity):
            raise TypeError(f"no such overload: quantity == {type(other).__name__}")
        return self.value == other.value

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"quantity({str(self.value)!r})"


def _quantity(arg: Any) -> Quantity:
    """The receiver or argument as a quantity; an int argument counts as a plain number."""
    if isinstance(arg, Quantity):
        return arg
    if isinstance(arg, int) and not isinstance(arg, bool | celtypes.BoolType):
        return Quantity(Fraction(int(arg)))
    raise TypeError(f"no such overload: expected a quantity, got {type(arg).__name__}")


def quantity(text: Any) -> Quantity:
    if not isinstance(text, str):
        raise TypeError(f"no such overload: quantity({type(text).__name__})")
    try:
        return Quantity.parse(str(text))
    except ValueError as exc:
        raise ValueError(f"quantity({str(text)!r}): {exc}") from exc


def is_quantity(text: Any) -> celtypes.BoolType:
    try:
        quantity(text)
    except (TypeError, ValueError):
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def compare_to(q: Any, other: Any) -> celtypes.IntType:
    a, b = _quantity(q).value, _quantity(other).value
    return celtypes.IntType((a > b) - (a < b))


def is_greater_than(q: Any, other: Any) -> celtypes.BoolType:
    return celtypes.BoolType(_quantity(q).value > _quantity(other).value)


def is_less_than(q: Any, other: Any) -> celtypes.BoolType:
    return celtypes.BoolType(_quantity(q).value < _quantity(other).value)


def add(q: Any, other: Any) -> Quantity:
    return Quantity(_quantity(q).value + _quantity(other).value)


def sub(q: Any, other: Any) -> Quantity:
    return Quantity(_quantity(q).value - _quantity(other).value)


def sign(q: Any) -> celtypes.IntType:
    value = _quantity(q).value
    return celtypes.IntType((value > 0) - (value < 0))


def is_integer(q: Any) -> celtypes.BoolType:
    value = _quantity(q).value
    return celtypes.BoolType(value.denominator == 1 and INT64_MIN <= value <= INT64_MAX)


def as_integer(q: Any) -> celtypes.IntType:
    value = _quantity(q).value
    if value.denominator != 1 or not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"cannot convert {float(value):g} to an int64 without losing precision")
    return celtypes.IntType(int(value))


def as_approximate_float(q: Any) -> celtypes.DoubleType:
    return celtypes.DoubleType(float(_quantity(q).value))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": quantity,
    "isQuantity": is_quantity,
    "compareTo": compare_to,
    "isGreaterThan": is_greater_than,
    "isLessThan": is_less_than,
    "add": add,
    "sub": sub,
    "sign": sign,
    "isInteger": is_integer,
    "asInteger": as_integer,
    "asApproximateFloat": as_approximate_float,
}
"""The CEL names of the library, as Kubernetes spells them."""
