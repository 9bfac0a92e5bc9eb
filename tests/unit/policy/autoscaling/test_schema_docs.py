"""The autoscaling schema: its docstrings state the defaults the code has, and it validates."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from inferplane.api import autoscaling
from inferplane.policy.autoscaling import predictive


def test_spec_defaults_are_knatives() -> None:
    spec = autoscaling.AutoscalingSpec()
    assert (spec.stableWindowSeconds, spec.panicWindowSeconds, spec.panicThreshold) == (60, 6, 2)
    assert (spec.scaleDownDelaySeconds, spec.mode, spec.objectives) == (0, "reactive", None)


def test_target_docstring_lists_the_default_targets() -> None:
    doc = autoscaling.AutoscalingSpec.model_fields["target"].description or ""
    stated = dict(re.findall(r"(\w+) ([\d.]+)", doc.split("Defaults by metric:")[1]))
    assert {k: float(v) for k, v in stated.items()} == autoscaling.DEFAULT_TARGETS


def test_latency_objective_docstrings_and_defaults_agree() -> None:
    objective = autoscaling.LatencyObjective(targetSeconds=1)
    assert (objective.percentile, objective.comfort) == (90, 0.7)
    fields = autoscaling.LatencyObjective.model_fields
    assert "comfort × targetSeconds" in (fields["comfort"].description or "")


def test_predictive_docstring_states_the_default_cold_start() -> None:
    doc = autoscaling.PredictiveSpec.model_fields["coldStartSeconds"].description or ""
    assert f"else {predictive.DEFAULT_COLD_START_SECONDS:g}" in doc
    spec = autoscaling.PredictiveSpec()
    assert (spec.seasonSeconds, spec.historySeconds, spec.bucketSeconds) == (0, 3600, 10)


def test_a_season_must_hold_two_buckets() -> None:
    with pytest.raises(ValidationError, match="under 2 × bucketSeconds"):
        autoscaling.AutoscalingSpec.model_validate({"predictive": {"seasonSeconds": 15}})
    spec = autoscaling.AutoscalingSpec.model_validate({"predictive": {"seasonSeconds": 20}})
    assert spec.predictive.seasonSeconds == 20


def test_objective_bounds() -> None:
    for bad in (
        {"targetSeconds": 0},
        {"targetSeconds": 1, "comfort": 1},
        {"targetSeconds": 1, "percentile": 101},
    ):
        with pytest.raises(ValidationError):
            autoscaling.LatencyObjective.model_validate(bad)
