"""What the request path shares: the gateway's parts, and one request's running record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from inferplane.gateway.accesslog import AccessLog
from inferplane.gateway.holdqueue import HoldQueue
from inferplane.gateway.metrics import GatewayMetrics
from inferplane.gateway.router import Router
from inferplane.gateway.table import EndpointEntry, KeyEntry, ServiceEntry, Table
from inferplane.gateway.upstreams import Upstreams
from inferplane.gateway.wire.server import Request, Responder
from inferplane.policy import quotas


class Gateway(Protocol):
    table: Table
    router: Router
    upstreams: Upstreams
    ledger: quotas.Ledger
    metrics: GatewayMetrics
    hold: HoldQueue
    access_log: AccessLog
    log_prompts: bool


@dataclass(slots=True)
class Context:
    """One request as it goes: who, where, how far, how much."""

    request: Request
    out: Responder
    request_id: bytes
    arrived: float = field(default_factory=time.monotonic)
    key: KeyEntry | None = None
    service: ServiceEntry | None = None
    endpoint: EndpointEntry | None = None
    checks: tuple[tuple[str, quotas.Limits], ...] = ()
    fallback: str | None = None
    retries: int = 0
    resumes: int = 0
    first_byte: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    status: int = 0
    cause: str | None = None
