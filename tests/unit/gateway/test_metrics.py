"""The gateway's metrics page as each caller sees it: a fleet key, a namespace's key, no key."""

from __future__ import annotations

import re

from inferplane.gateway.metrics import FLEET, GatewayMetrics

SERVICES = ("team-a/chat", "team-b/secret", "team-ab/other", "-")


def _filled() -> GatewayMetrics:
    metrics = GatewayMetrics()
    for service in SERVICES:
        metrics.requests.inc((service, "ep", "200"))
        metrics.errors.inc((service, "upstream"))
        metrics.latency.observe((service,), 0.2)
        metrics.fallbacks.inc((service, "endpoint/ext"))
    metrics.in_flight.set(("team-b/dep", "ep-b"), 3)
    metrics.table_age.set((), 5.0)
    return metrics


def _families(page: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+)", page, re.M))


def test_a_fleet_key_sees_every_namespace() -> None:
    page = _filled().render(FLEET).decode()
    for service in (*SERVICES, "team-b/dep"):
        assert f'service="{service}"' in page
    assert "inferplane_gateway_routing_table_age_seconds 5.0" in page


def test_a_namespaces_page_has_only_its_services_and_the_gateways_own() -> None:
    metrics = _filled()
    page = metrics.render("team-a").decode()
    assert 'inferplane_gateway_requests_total{endpoint="ep",service="team-a/chat"' in page
    assert 'inferplane_gateway_request_duration_seconds_count{service="team-a/chat"}' in page
    assert "inferplane_gateway_routing_table_age_seconds 5.0" in page
    for other in ("team-b", "team-ab", 'service="-"', "ep-b"):
        assert other not in page, "another namespace's (or everyone's) series"
    fleet_only = {"inferplane_gateway_tunnels", "inferplane_gateway_tunnel_streams_total"}
    assert _families(page) == _families(metrics.render(FLEET).decode()) - fleet_only, (
        "families stay, but for the fleet's own (its planes' tunnels)"
    )


def test_without_a_key_the_page_has_no_tenants_series_nor_their_families() -> None:
    page = _filled().render(None).decode()
    assert "inferplane_gateway_routing_table_age_seconds 5.0" in page
    assert _families(page) == {"inferplane_gateway_routing_table_age_seconds"}
    for mark in ("service=", "team-", "endpoint=", "endpoint/ext"):
        assert mark not in page, mark


def test_every_family_with_a_tenant_label_has_the_service_label() -> None:
    """The anonymous page leaves out the families with a service label: a family naming an
    endpoint or fallback target without it would slip through."""
    for metric in vars(GatewayMetrics()).values():
        labels = set(metric.labels)
        if labels & {"endpoint", "target"}:
            assert "service" in labels, metric.name
