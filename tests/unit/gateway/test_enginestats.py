"""The engines' load, read from their /metrics, refines the router's view of each endpoint."""

from __future__ import annotations

from inferplane.api import services
from inferplane.gateway.enginestats import EngineLoad, parse
from inferplane.gateway.router import Router
from inferplane.gateway.table import EndpointEntry, ServiceEntry, Table
from inferplane.gateway.wire.upstream import Origin
from inferplane.policy.routing.requests import RouteRequest

EXPOSITION = b"""# HELP vllm:num_requests_running Requests in the running batch.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="demo"} 3.0
vllm:num_requests_waiting{engine="0",model_name="demo"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="demo"} 0.75
vllm:prompt_tokens_total{model_name="demo"} 120.0
"""


def test_parse_reads_running_waiting_and_kv_usage() -> None:
    assert parse(EXPOSITION) == EngineLoad(running=3, waiting=2, kv_usage=0.75)


def test_parse_tolerates_other_and_broken_lines() -> None:
    assert parse(b"vllm:num_requests_running{} nan-ish\nfoo 1\n") == EngineLoad()
    assert parse(b"vllm:gpu_cache_usage_perc 0.5\n") == EngineLoad(kv_usage=0.5)


def _endpoint(name: str) -> EndpointEntry:
    return EndpointEntry("default", name, Origin("127.0.0.1", 1), "d", False, "", True, None, None)


def test_least_request_avoids_an_engine_busy_with_other_gateways_traffic() -> None:
    spec = services.ServiceSpec(routes=[services.Route(deployment="d")], strategy="least-request")
    service = ServiceEntry("default", "s", "s", spec)
    endpoints = (_endpoint("a"), _endpoint("b"))
    table = Table(
        endpoints={("default", "d"): endpoints},
        endpoints_by_name={("default", e.name): e for e in endpoints},
    )
    router = Router(region=None, seed=1)
    router.engine_load[("default", "a")] = EngineLoad(running=8, waiting=4)
    picks = {
        router.choose(
            table, service, RouteRequest(), 0.0, tried=set(), empty_routes=set()
        ).endpoint.name  # type: ignore[union-attr]
        for _ in range(20)
    }
    assert picks == {"b"}
