"""docs/gateway.md: every YAML example is a valid object, and the metrics it lists exist."""

from __future__ import annotations

import pathlib
import re

import yaml

from inferplane.api import validation
from inferplane.gateway.metrics import GatewayMetrics

PAGE = pathlib.Path(__file__).parents[3] / "docs" / "gateway.md"


def test_every_yaml_example_is_a_valid_object() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.S)
    kinds = [
        validation.parse_object(document).kind
        for block in blocks
        for document in yaml.safe_load_all(block)
    ]
    assert kinds == ["Service", "Secret", "Endpoint", "Service"]


def test_the_metrics_it_names_are_the_gateways() -> None:
    named = set(re.findall(r"`(inferplane_gateway_\w+?)(?:\{|`)", PAGE.read_text()))
    exposed = GatewayMetrics().render().decode()
    exposed_names = set(re.findall(r"^# TYPE (\S+)", exposed, re.M))
    for name in named:
        base = name.removesuffix("_total")
        assert base in exposed_names or name in exposed_names, name
