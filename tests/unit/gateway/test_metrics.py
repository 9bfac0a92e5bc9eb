"""The gateway's metrics page, whole or as one namespace sees it."""

from __future__ import annotations

from inferplane.gateway.metrics import GatewayMetrics


def _filled() -> GatewayMetrics:
    metrics = GatewayMetrics()
    for service in ("team-a/chat", "team-b/secret", "team-ab/other", "-"):
        metrics.requests.inc((service, "ep", "200"))
        metrics.latency.observe((service,), 0.2)
    metrics.in_flight.set(("team-b/dep", "ep"), 3)
    metrics.table_age.set((), 5.0)
    return metrics


def test_the_whole_page_has_every_namespace() -> None:
    page = _filled().render().decode()
    for service in ("team-a/chat", "team-b/secret", "team-ab/other", "-"):
        assert f'service="{service}"' in page


def test_a_namespaces_page_has_only_its_services_and_the_gateways_own() -> None:
    page = _filled().render("team-a").decode()
    assert 'inferplane_gateway_requests_total{endpoint="ep",service="team-a/chat"' in page
    assert 'inferplane_gateway_request_duration_seconds_count{service="team-a/chat"}' in page
    assert "inferplane_gateway_routing_table_age_seconds 5.0" in page
    for other in ("team-b", "team-ab", 'service="-"'):
        assert other not in page, "another namespace's (or everyone's) series"
    assert "# TYPE inferplane_gateway_in_flight_requests gauge" in page, "families stay"
