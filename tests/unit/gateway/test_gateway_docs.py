"""docs/gateway.md: every YAML example is a valid object (or Prometheus config), and the
metrics it lists exist."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import yaml

from inferplane.api import validation
from inferplane.gateway.metrics import FLEET, GatewayMetrics

PAGE = pathlib.Path(__file__).parents[3] / "docs" / "gateway.md"


def _yaml_documents() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.S)
    return [document for block in blocks for document in yaml.safe_load_all(block)]


def test_every_yaml_example_is_a_valid_object() -> None:
    objects = [document for document in _yaml_documents() if "scrape_configs" not in document]
    kinds = [validation.parse_object(document).kind for document in objects]
    assert kinds == ["Service", "Secret", "Endpoint", "Service"]


def test_the_prometheus_example_scrapes_with_a_bearer_credentials_file() -> None:
    """What /metrics needs to show tenants' series: the key, as Prometheus sends it."""
    (config,) = [document for document in _yaml_documents() if "scrape_configs" in document]
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"].startswith("/")
    assert job["static_configs"][0]["targets"]


def test_the_metrics_it_names_are_the_gateways() -> None:
    named = set(re.findall(r"`(inferplane_gateway_\w+?)(?:\{|`)", PAGE.read_text()))
    exposed = GatewayMetrics().render(FLEET).decode()
    exposed_names = set(re.findall(r"^# TYPE (\S+)", exposed, re.M))
    for name in named:
        base = name.removesuffix("_total")
        assert base in exposed_names or name in exposed_names, name
