"""The metrics channel's wire format: what agents and gateways report about load.

These are not stored objects: a report is posted to the control plane, kept in memory for
the autoscaler, and never written to the store (see control/loadboard.py). Every number is
bounded, so a report cannot carry NaN, infinities or a negative load.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from inferplane.api import meta

MAX_ENTRIES = 5000
"""Most replicas (or deployments) in one report; an agent with more sends several."""


def _load() -> Any:
    """A fresh field each time: pydantic writes each field's docstring onto its FieldInfo."""
    return Field(0.0, ge=0, le=1e9, allow_inf_nan=False)


class ReplicaLoadEntry(meta.Model):
    """One replica's load, as its agent last read it from the engine."""

    namespace: meta.DnsLabel
    """The replica's namespace."""
    name: meta.DnsLabel
    """The replica's name; only replicas bound to the reporting agent's cluster count."""
    running: float = _load()
    """Requests being prefilled or decoded."""
    waiting: float = _load()
    """Requests queued in the engine."""
    kvCacheUsage: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    """Fraction of the KV cache in use."""
    requestsPerSecond: float = _load()
    """Finished requests per second over the agent's interval."""
    generationTokensPerSecond: float = _load()
    """Output tokens per second over the agent's interval."""
    ttftSeconds: float | None = Field(None, ge=0, le=1e6, allow_inf_nan=False)
    """Mean time to first token over the interval; unset when no request started."""
    tpotSeconds: float | None = Field(None, ge=0, le=1e6, allow_inf_nan=False)
    """Mean time per output token over the interval; unset when none was generated."""


class ReplicaLoadReport(meta.Model):
    """An agent's report: the load of the Ready replicas on its cluster."""

    KIND: ClassVar[str] = "ReplicaLoadReport"

    kind: Literal["ReplicaLoadReport"] = "ReplicaLoadReport"
    """Always ReplicaLoadReport."""
    cluster: meta.DnsLabel | None = None
    """The reporting cluster; an agent may leave it unset (it reports for its own only)."""
    replicas: list[ReplicaLoadEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    """One entry per Ready replica."""


class DeploymentTrafficEntry(meta.Model):
    """One deployment's traffic as one gateway sees it."""

    namespace: meta.DnsLabel
    """The deployment's namespace."""
    name: meta.DnsLabel
    """The deployment's name."""
    inFlight: int = Field(0, ge=0, le=10**9)
    """Requests sent to the deployment's engines and not yet finished: while any are, the
    deployment is not idle (a long stream keeps it from scaling to zero)."""
    held: int = Field(0, ge=0, le=10**9)
    """Requests held because no replica of the deployment is ready (scale from zero)."""
    arrivals: int = Field(0, ge=0, le=10**12)
    """Requests for the deployment that arrived since the gateway's previous report."""


class GatewayTrafficReport(meta.Model):
    """A gateway's report: its traffic per deployment."""

    KIND: ClassVar[str] = "GatewayTrafficReport"

    kind: Literal["GatewayTrafficReport"] = "GatewayTrafficReport"
    """Always GatewayTrafficReport."""
    instance: meta.DnsLabel = "default"
    """Which of several gateways sharing one API key this is (their reports are kept apart)."""
    deployments: list[DeploymentTrafficEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    """One entry per deployment with traffic or held requests."""
