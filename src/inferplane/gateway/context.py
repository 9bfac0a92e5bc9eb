"""What the request path reads of the gateway: its parts, as one protocol (app.GatewayApp).

A protocol rather than the class itself, so that pipeline.py and streaming.py do not import
app.py, which imports them.
"""

from __future__ import annotations

from typing import Protocol

from inferplane.gateway.accesslog import AccessLog
from inferplane.gateway.holdqueue import HoldQueue
from inferplane.gateway.metrics import GatewayMetrics
from inferplane.gateway.router import Router
from inferplane.gateway.table import Table
from inferplane.gateway.upstreams import Upstreams
from inferplane.gateway.usage import UsageReports
from inferplane.policy import quotas


class Gateway(Protocol):
    table: Table
    router: Router
    upstreams: Upstreams
    ledger: quotas.Ledger
    metrics: GatewayMetrics
    hold: HoldQueue
    usage: UsageReports
    access_log: AccessLog
    log_prompts: bool
