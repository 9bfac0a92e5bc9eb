"""Device selectors: CEL over DRA's device shape, checked when written, memoised when run."""

from __future__ import annotations

import pytest

from inferplane.api import deployments, fleet, validation
from inferplane.api.errors import ValidationFailure
from inferplane.policy import devices

H100 = fleet.DeviceGroup(
    name="gpu",
    count=8,
    driver="gpu.nvidia.com",
    attributes={"productName": "H100", "nvidia.com/cudaMajor": 12, "mig": False},
    capacity={"memory": "80Gi"},
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('device.attributes["gpu.nvidia.com"].productName == "H100"', True),
        ('device.attributes["gpu.nvidia.com"].productName == "A100"', False),
        ('device.attributes["nvidia.com"].cudaMajor >= 12', True),
        ('device.attributes["gpu.nvidia.com"].mig == false', True),
        ('device.driver == "gpu.nvidia.com"', True),
        ('"amd.com" in device.attributes', False),
        ('device.attributes["amd.com"].size() == 0', True),
        ('has(device.attributes["gpu.nvidia.com"].productName)', True),
        ('device.attributes["gpu.nvidia.com"].productName.startsWith("H")', True),
        ('["H100", "H200"].exists(p, p == device.attributes["gpu.nvidia.com"].productName)', True),
    ],
)
def test_selectors_see_the_device_as_dra_shapes_it(expression: str, expected: bool) -> None:
    assert devices.check(expression) is None
    assert devices.matches(expression, H100).ok is expected


def test_domain_qualified_keys_need_no_driver() -> None:
    group = fleet.DeviceGroup(attributes={"gpu.nvidia.com/productName": "L4"})
    assert devices.matches('device.attributes["gpu.nvidia.com"].productName == "L4"', group).ok
    assert devices.matches('device.driver == ""', group).ok


def test_a_missing_attribute_is_no_match_with_the_reason() -> None:
    result = devices.matches('device.attributes["amd.com"].productName == "MI300"', H100)
    assert not result.ok
    assert "productName" in result.error


def test_a_non_boolean_selector_matches_nothing() -> None:
    result = devices.matches("1 + 2", H100)
    assert (result.ok, result.error) == (False, "selector gave IntType, not a boolean")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('device.attributes["gpu.nvidia.com"].productName ==', "syntax error at column 49"),
        ("device.attributes[", "unexpected end of expression"),
        ('device.driver == "x" &&& true', "syntax error"),
        ('nvml(device) == "ok"', "undeclared reference to function nvml()"),
        ('device.capacity["gpu.nvidia.com"].memory.biggerThan(1)', "method .biggerThan()"),
        ('gpu.attributes["x"].y == 1', "variable gpu"),
    ],
)
def test_a_selector_that_does_not_compile_says_where_and_why(expression: str, message: str) -> None:
    problem = devices.check(expression)
    assert problem is not None and message in problem
    with pytest.raises(devices.SelectorError):
        devices.compile_selector(expression)


def test_compiled_programs_and_results_are_memoised() -> None:
    text = 'device.attributes["gpu.nvidia.com"].productName == "H100"'
    assert devices.compile_selector(text) is devices.compile_selector(text)
    twin = H100.model_copy(update={"name": "other", "count": 4})
    assert devices.group_key(twin) == devices.group_key(H100), "name and count do not show"
    before = devices.matches_key.cache_info().hits
    devices.matches(text, H100)
    devices.matches(text, twin)
    assert devices.matches_key.cache_info().hits >= before + 1


def test_values_of_different_types_are_different_keys() -> None:
    one = fleet.DeviceGroup(driver="d.io", attributes={"x": 1})
    true = fleet.DeviceGroup(driver="d.io", attributes={"x": True})
    assert devices.group_key(one) != devices.group_key(true)
    assert devices.matches('device.attributes["d.io"].x == true', true).ok
    assert not devices.matches('device.attributes["d.io"].x == true', one).ok


def pool_doc(**group: object) -> dict[str, object]:
    spec = {"cluster": "eu-1", "devicesPerNode": [{"name": "gpu", **group}]}
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Pool",
        "metadata": {"name": "p"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("group", "field", "message"),
    [
        ({"attributes": {"productName": "H100"}}, "attributes[productName]", "names no domain"),
        ({"capacity": {"memory": "80Gi"}}, "capacity[memory]", "names no domain"),
        ({"driver": "Not_A_Domain"}, "driver", "DNS subdomain"),
        (
            {"driver": "d.io", "attributes": {"product-name": "x"}},
            "attributes[product-name]",
            "C identifier",
        ),
        ({"attributes": {"UPPER.io/x": "y"}}, "attributes[UPPER.io/x]", "DNS subdomain"),
    ],
)
def test_pool_device_names_follow_dra(group: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ValidationFailure) as caught:
        validation.parse_object(pool_doc(**group))
    (cause,) = caught.value.causes
    assert cause.field == f"spec.devicesPerNode[0].{field}"
    assert message in cause.message


def test_selector_causes_name_each_bad_selector_by_its_path() -> None:
    requests = [
        deployments.DeviceRequest(name="gpu", count=1, selectors=['device.driver == "x"']),
        deployments.DeviceRequest(name="gpu", count=1, selectors=["ok == ", "gadget.size > 1"]),
    ]
    causes = devices.selector_causes(requests)
    assert [c.field for c in causes] == [
        "spec.resources.devices[1].selectors[0]",
        "spec.resources.devices[1].selectors[1]",
    ]
    assert all(c.message.startswith("invalid CEL: ") for c in causes)
