"""Usage back to the control plane: each key's and Quota's tokens and cost this period.

Every few seconds the subjects that served requests since the last report get their status
merge-patched (tokensUsed, costUsed, periodStart, and lastUsedTime for keys), in a thread, off
the request path. A gateway that starts seeds its ledger from those statuses, so a budget
survives a gateway whose disk was lost; a gateway keeps its own ledger on disk too.

Several gateways each write what they counted; a restarted one takes the larger of its own
count and the status. Enforcing one budget exactly across gateways would need a shared
counter on the request path, which static stability rules out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from inferplane import client as api_client
from inferplane import logs
from inferplane.gateway.table import Table
from inferplane.policy import quotas

log = logging.getLogger("inferplane.gateway.usage")

REPORT_SECONDS = 5.0


class UsageReports:
    """Which subjects served requests since the last report, and when each key last did."""

    def __init__(self) -> None:
        self.dirty: set[str] = set()
        self.last_used: dict[str, float] = {}

    def touched(self, checks: Iterable[tuple[str, quotas.Limits]], now: float) -> None:
        """The subjects of a request's `checks` served it at `now`."""
        for subject, _ in checks:
            self.dirty.add(subject)
            if subject.startswith("key "):
                self.last_used[subject] = now


def seed(ledger: quotas.Ledger, table: Table) -> None:
    """Take what the control plane says each subject used this period."""
    for subject, (tokens, cost, start) in table.usage.items():
        ledger.seed(subject, tokens, cost, start)


def patches(
    reports: UsageReports, ledger: quotas.Ledger, table: Table, now: float
) -> list[tuple[str, str, str, dict[str, object]]]:
    """(kind, namespace, name, status patch) for every subject touched since the last call."""
    limits = {key.subject: key.limits for key in table.keys.values()}
    for shared in table.quotas.values():
        limits.update(dict(shared))
    out = []
    for subject in sorted(reports.dirty):
        if subject not in limits:
            continue
        kind, _, ref = subject.partition(" ")
        namespace, _, name = ref.partition("/")
        tokens, cost = ledger.usage(subject, limits[subject], now)
        start, _ = quotas.period_bounds(now, limits[subject].period)
        status: dict[str, object] = {
            "tokensUsed": tokens,
            "costUsed": round(cost, 9),
            "periodStart": _iso(start),
        }
        if subject in reports.last_used:
            status["lastUsedTime"] = _iso(reports.last_used[subject])
        out.append(("ApiKey" if kind == "key" else "Quota", namespace, name, status))
    reports.dirty.clear()
    return out


async def report_forever(
    reports: UsageReports,
    ledger: Callable[[], quotas.Ledger],
    table: Callable[[], Table],
    make_client: Callable[[], api_client.Client],
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(REPORT_SECONDS)
        batch = patches(reports, ledger(), table(), time.time())
        if batch:
            await loop.run_in_executor(None, _send, batch, make_client)


def _send(
    batch: list[tuple[str, str, str, dict[str, object]]],
    make_client: Callable[[], api_client.Client],
) -> None:
    try:
        with make_client() as client:
            for kind, namespace, name, status in batch:
                try:
                    client.patch(
                        kind, name, {"status": status}, namespace=namespace, subresource="status"
                    )
                except api_client.NotFound:
                    continue  # deleted meanwhile
    except api_client.ClientError as error:
        logs.event(
            log, "usage not reported", level=logging.WARNING, subjects=len(batch), error=str(error)
        )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
