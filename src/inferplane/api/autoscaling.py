"""A deployment's autoscaling policy, with Knative's stable and panic windows.

The autoscaler averages the metric over the stable window and sizes the deployment so that each
replica carries `target`; when the short panic window shows demand over panicThreshold times
current capacity, it scales up at once and does not scale down until the panic passes.
Latency objectives (TTFT, TPOT) can add replicas or hold a scale-down, and predictive mode
provisions ahead of a forecast of the load. The policy itself is inferplane.policy.autoscaling.
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


class LatencyObjective(meta.Model):
    """A latency to keep, read at a percentile of the ready replicas' samples over the stable
    window."""

    targetSeconds: float = Field(gt=0)
    """The latency, in seconds, the percentile should stay at or under. Over it, the objective
    asks for ready replicas × observed / targetSeconds replicas (rounded up)."""
    percentile: float = Field(90.0, gt=0, le=100)
    """Which percentile of the samples to compare (nearest rank), over 0 and at most 100."""
    comfort: float = Field(0.7, gt=0, lt=1)
    """Fraction of targetSeconds under which the objective allows a scale-down; between
    comfort × targetSeconds and targetSeconds it holds the replicas (no scale-down)."""


class Objectives(meta.Model):
    """Latency objectives that act beside the load metric: the larger answer wins."""

    ttft: LatencyObjective | None = None
    """Time to first token, seconds."""
    tpot: LatencyObjective | None = None
    """Time per output token, seconds."""


class PredictiveSpec(meta.Model):
    """How predictive mode forecasts the load (additive Holt-Winters over a bucketed history)."""

    seasonSeconds: float = Field(0.0, ge=0)
    """Length of the load's season (e.g. 86400 for a daily cycle); 0 is no season, Holt's linear
    trend only. If nonzero, at least 2 × bucketSeconds; the season is used once the history
    holds two whole seasons."""
    historySeconds: values.Seconds = 3600.0
    """Seconds of bucketed load history kept for the forecast."""
    bucketSeconds: values.Seconds = 10.0
    """Width of one history bucket, in seconds; at most historySeconds."""
    coldStartSeconds: values.Seconds | None = None
    """Provision this far ahead: the forecast is for now plus this many seconds; unset uses the
    deployment's measured cold start, else 60."""

    @model_validator(mode="after")
    def _season_holds_buckets(self) -> PredictiveSpec:
        if self.seasonSeconds and self.seasonSeconds < 2 * self.bucketSeconds:
            raise errors.field_error(
                "seasonSeconds",
                message=f"{self.seasonSeconds:g} is under 2 × bucketSeconds "
                f"({2 * self.bucketSeconds:g}); use 0 for no season",
            )
        if self.bucketSeconds > self.historySeconds:
            raise errors.field_error(
                "bucketSeconds", message="bucketSeconds exceeds historySeconds"
            )
        return self


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
    """Enter panic mode when the panic window wants this many times the Ready replicas; the
    panic ends stableWindowSeconds after the panic window was last over it, and never scales
    down while it lasts."""
    scaleToZeroAfterSeconds: values.Seconds = 300.0
    """Seconds without requests before scaling to zero; only when minReplicas is 0."""
    maxScaleUpRate: float = Field(1000.0, gt=1)
    """At most this many times the Ready replicas (at least 1) in one decision, never capping
    below the current replicas: replicas still starting do not compound the growth."""
    maxScaleDownRate: float = Field(2.0, gt=1)
    """At least the Ready replicas (at least 1) divided by this, rounded down, in one
    decision."""
    scaleDownDelaySeconds: float = Field(0.0, ge=0)
    """A scale-down takes effect only once it has been recommended for this long: the replicas
    are the most recommended over the last scaleDownDelaySeconds. 0 scales down at once."""
    objectives: Objectives | None = None
    """Latency objectives; unset scales on the metric alone."""
    mode: Literal["reactive", "predictive"] = "reactive"
    """reactive scales on observed load; predictive also provisions for the load forecast one
    cold start ahead, never fewer replicas than reactive would."""
    predictive: PredictiveSpec = Field(default_factory=PredictiveSpec)
    """How the forecast is made; read only in predictive mode."""

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
