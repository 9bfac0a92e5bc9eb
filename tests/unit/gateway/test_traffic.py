"""The gateway's traffic report: in flight, held and arrivals per deployment, and one last
all-zero report when traffic ends."""

from __future__ import annotations

import asyncio

from inferplane.api import loadreports
from inferplane.gateway.holdqueue import HoldQueue
from inferplane.gateway.router import Router
from inferplane.gateway.traffic import TrafficReports
from tests.unit.gateway.objects import endpoint, table_of

TABLE = table_of(endpoint("d-0", "d"), endpoint("d-1", "d"), endpoint("e-0", "e"))


def entries(body: dict[str, object] | None) -> dict[str, tuple[int, int, int]]:
    assert body is not None
    report = loadreports.GatewayTrafficReport.model_validate(body)  # the wire's own schema
    return {e.name: (e.inFlight, e.held, e.arrivals) for e in report.deployments}


def test_arrivals_are_differences_and_in_flight_sums_a_deployments_endpoints() -> None:
    router, hold, reports = (
        Router(region=None),
        HoldQueue(lambda d, n: None),
        TrafficReports("gw-1"),
    )
    assert reports.report(TABLE, router, hold) is None, "nothing to say"
    d0, d1 = (
        TABLE.endpoints_by_name[("default", "d-0")],
        TABLE.endpoints_by_name[("default", "d-1")],
    )
    for e in (d0, d0, d1):
        router.started(e)
    router.finished(d0)
    assert entries(reports.report(TABLE, router, hold)) == {"d": (2, 0, 3)}
    router.finished(d0)
    router.finished(d1)
    assert entries(reports.report(TABLE, router, hold)) == {"d": (0, 0, 0)}, "the end, once"
    assert reports.report(TABLE, router, hold) is None


def test_held_requests_are_reported_for_their_deployment() -> None:
    async def scenario() -> None:
        router, hold, reports = Router(region=None), HoldQueue(lambda d, n: None), TrafficReports()
        waiter = asyncio.create_task(hold.wait([("default", "z")], timeout=60))
        await asyncio.sleep(0)
        assert entries(reports.report(TABLE, router, hold)) == {"z": (0, 1, 0)}
        waiter.cancel()

    asyncio.run(scenario())
