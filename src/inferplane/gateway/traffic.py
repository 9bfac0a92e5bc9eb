"""Reports the gateway's traffic per deployment to the control plane's metrics channel.

Every REPORT_SECONDS: requests in flight to each deployment's engines, requests held for a
deployment with no ready replica, and arrivals since the last report. The autoscaler counts
held requests as demand no replica sees yet and uses arrivals to tell an idle deployment from
a quiet one. A deployment is reported while it has traffic, and once more when it has none,
so the control plane sees the traffic end. Off the request path: the post runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from inferplane import client as api_client
from inferplane import logs
from inferplane.api import loadreports
from inferplane.gateway.holdqueue import HoldQueue
from inferplane.gateway.router import Router
from inferplane.gateway.table import NsName, Table

log = logging.getLogger(__name__)

REPORT_SECONDS = 2.0


@dataclass
class TrafficReports:
    instance: str = "default"
    _routed: dict[NsName, int] = field(default_factory=dict)
    _active: set[NsName] = field(default_factory=set)

    def report(self, table: Table, router: Router, hold: HoldQueue) -> dict[str, object] | None:
        """The body to post now (None when there is nothing to say); advances the arrivals."""
        in_flight: dict[NsName, int] = {}
        arrivals: dict[NsName, int] = {}
        for key, count in router.routed.items():
            endpoint = table.endpoints_by_name.get(key)
            if endpoint is None or endpoint.deployment is None:
                continue
            deployment = (endpoint.namespace, endpoint.deployment)
            new = count - self._routed.get(key, 0)
            if new > 0:
                arrivals[deployment] = arrivals.get(deployment, 0) + new
            in_flight[deployment] = in_flight.get(deployment, 0) + router.in_flight.get(key, 0)
        self._routed = dict(router.routed)
        held = hold.held_by_deployment()
        busy = {
            k
            for k in (*in_flight, *arrivals, *held)
            if in_flight.get(k) or arrivals.get(k) or held.get(k)
        }
        wanted = sorted(busy | self._active)[: loadreports.MAX_ENTRIES]
        self._active = busy
        if not wanted:
            return None
        entries = [
            {
                "namespace": ns,
                "name": name,
                "inFlight": in_flight.get((ns, name), 0),
                "held": held.get((ns, name), 0),
                "arrivals": arrivals.get((ns, name), 0),
            }
            for ns, name in wanted
        ]
        return {"kind": "GatewayTrafficReport", "instance": self.instance, "deployments": entries}


async def report_forever(
    reports: TrafficReports,
    table: Callable[[], Table],
    router: Router,
    hold: HoldQueue,
    make_client: Callable[[], api_client.Client],
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(REPORT_SECONDS)
        body = reports.report(table(), router, hold)
        if body is not None:
            await loop.run_in_executor(None, _send, body, make_client)


def _send(body: dict[str, object], make_client: Callable[[], api_client.Client]) -> None:
    try:
        with make_client() as client:
            client.report_traffic(body)
    except api_client.ClientError as error:
        logs.event(log, "traffic not reported", level=logging.WARNING, error=str(error))
