"""Kubernetes' CEL quantity library, as DRA selectors use it."""

from __future__ import annotations

import pytest

from inferplane.api import fleet
from inferplane.policy import devices

GROUP = fleet.DeviceGroup(driver="gpu.nvidia.com", capacity={"memory": "80Gi"})


def holds(expression: str) -> bool:
    result = devices.matches(expression, GROUP)
    assert not result.error, result.error
    return result.ok


@pytest.mark.parametrize(
    "expression",
    [
        'quantity("1Gi").compareTo(quantity("1024Mi")) == 0',
        'quantity("1Gi") == quantity("1024Mi")',
        'quantity("2").isGreaterThan(quantity("1500m"))',
        'quantity("100m").isLessThan(quantity("1"))',
        'quantity("1k").asInteger() == 1000',
        'quantity("1.5").asApproximateFloat() == 1.5',
        'quantity("1.5").isInteger() == false',
        'quantity("1Mi").add(quantity("1Mi")) == quantity("2Mi")',
        'quantity("1Mi").add(1) == quantity("1048577")',
        'quantity("1").sub(quantity("2")).sign() == -1',
        'isQuantity("80Gi") && !isQuantity("eighty")',
        'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) >= 0',
        'device.capacity["gpu.nvidia.com"].memory.isGreaterThan(quantity("40Gi"))',
        'device.capacity["gpu.nvidia.com"].memory.asInteger() == 85899345920',
    ],
)
def test_the_library_answers_as_kubernetes_does(expression: str) -> None:
    assert holds(expression)


def test_comparisons_are_exact_where_floats_would_round() -> None:
    assert holds('quantity("100000000000000001").isGreaterThan(quantity("1e17"))')


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ('quantity("eighty") == quantity("1")', "is not a quantity"),
        ('quantity("1.5").asInteger() == 1', "without losing precision"),
        ('quantity("1").compareTo("1") == 0', "no such overload"),
    ],
)
def test_misuse_is_an_error_and_never_a_match(expression: str, error: str) -> None:
    result = devices.matches(expression, GROUP)
    assert not result.ok
    assert error in result.error
