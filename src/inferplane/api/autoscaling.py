"""A deployment's autoscaling policy, with Knative's stable and panic windows.

The autoscaler averages the metric over the stable window and sizes the deployment so that each
replica carries `target`; when the short panic window shows demand over panicThreshold times
current capacity, it scales up at once and does not scale down until the panic passes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from inferplane.api import errors, meta, values

Metric = Literal["concurrency", "rps", "tokensPerSecond", "kvCacheUsage", "waiting"]

DEFAULT_TARGETS: dict[str, float] = {
    "concurrency": 16.0,
    "rps": 10.0,
    "tokensPerSecond": 1000.0,
    "kvCacheUsage": 0.8,
    "waiting": 4.0,
}
"""The per-replica target each metric defaults to."""


class AutoscalingSpec(meta.Model):
    """How many replicas to run as load changes, within minReplicas and maxReplicas."""

    enabled: bool = True
    """False keeps spec.replicas as written while leaving the policy in place."""
    minReplicas: int = Field(1, ge=0)
    """Fewest replicas; 0 allows scaling to zero after scaleToZeroAfterSeconds without requests."""
    maxReplicas: int = Field(10, ge=1)
    """Most replicas, whatever the load."""
    metric: Metric = "concurrency"
    """What load is measured by, per replica: concurrency (running plus waiting requests), rps
    (requests per second), tokensPerSecond (generated), kvCacheUsage (0 to 1), waiting (queue)."""
    target: float = Field(DEFAULT_TARGETS["concurrency"], gt=0)
    """Value of the metric each replica should carry. Defaults by metric: concurrency 16, rps 10,
    tokensPerSecond 1000, kvCacheUsage 0.8, waiting 4."""
    stableWindowSeconds: values.Seconds = 60.0
    """Seconds of history averaged for ordinary scaling decisions."""
    panicWindowSeconds: values.Seconds = 6.0
    """Seconds of history for panic detection; at most stableWindowSeconds."""
    panicThreshold: float = Field(2.0, ge=1)
    """Enter panic mode when the panic window wants this many times the current replicas."""
    scaleToZeroAfterSeconds: values.Seconds = 300.0
    """Seconds without requests before scaling to zero; only when minReplicas is 0."""
    maxScaleUpRate: float = Field(1000.0, gt=1)
    """At most this many times the current replicas in one decision."""
    maxScaleDownRate: float = Field(2.0, gt=1)
    """At least the current replicas divided by this in one decision."""

    @model_validator(mode="before")
    @classmethod
    def _target_from_metric(cls, data: Any) -> Any:
        if isinstance(data, dict) and "target" not in data:
            metric = data.get("metric", "concurrency")
            if metric in DEFAULT_TARGETS:
                return {**data, "target": DEFAULT_TARGETS[metric]}
        return data

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> AutoscalingSpec:
        if self.minReplicas > self.maxReplicas:
            raise errors.field_error(
                "minReplicas",
                message=f"{self.minReplicas} exceeds maxReplicas ({self.maxReplicas})",
            )
        if self.panicWindowSeconds > self.stableWindowSeconds:
            raise errors.field_error(
                "panicWindowSeconds", message="panicWindowSeconds exceeds stableWindowSeconds"
            )
        return self
