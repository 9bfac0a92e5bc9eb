"""parse_object and field paths: every failure names the field it is about."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from inferplane.api import deployments, errors, fields, meta, validation

from . import samples


def _causes(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(errors.ValidationFailure) as caught:
        validation.parse_object(doc)
    return [(c.field, c.message) for c in caught.value.causes]


def _fields(doc: dict[str, Any]) -> list[str]:
    return [field for field, _ in _causes(doc)]


def test_missing_api_version_and_kind_are_both_named() -> None:
    doc = samples.manifest("Deployment")
    del doc["apiVersion"], doc["kind"]
    assert _fields(doc) == ["apiVersion", "kind"]


def test_wrong_api_version_is_named() -> None:
    doc = samples.manifest("Deployment") | {"apiVersion": "apps/v1"}
    ((field, message),) = _causes(doc)
    assert field == "apiVersion"
    assert "'apps/v1'" in message
    assert "inferplane.dev/v1" in message


def test_unknown_kind_lists_known_kinds() -> None:
    doc = samples.manifest("Deployment") | {"kind": "Pod"}
    ((field, message),) = _causes(doc)
    assert field == "kind"
    assert "'Pod'" in message
    assert "Deployment" in message


def test_kind_must_be_exact() -> None:
    doc = samples.manifest("Deployment") | {"kind": "deploy"}
    assert _fields(doc) == ["kind"]


def test_failure_message_follows_the_wire_format() -> None:
    doc = samples.manifest("Deployment", replicas=-1)
    doc["metadata"]["name"] = "chat"
    with pytest.raises(errors.ValidationFailure) as caught:
        validation.parse_object(doc)
    failure = caught.value
    assert (failure.kind, failure.name) == ("Deployment", "chat")
    assert str(failure) == (
        'Deployment.inferplane.dev "chat" is invalid: '
        "spec.replicas: Input should be greater than or equal to 0"
    )


def test_missing_field_has_required_reason() -> None:
    doc = samples.manifest("Pool")
    del doc["spec"]["cluster"]
    with pytest.raises(errors.ValidationFailure) as caught:
        validation.parse_object(doc)
    assert caught.value.causes == [
        errors.Cause("spec.cluster", "Field required", "FieldValueRequired")
    ]


def test_enum_value_has_not_supported_reason() -> None:
    doc = samples.manifest("Deployment", engine={"recipe": "triton"})
    with pytest.raises(errors.ValidationFailure) as caught:
        validation.parse_object(doc)
    (cause,) = caught.value.causes
    assert cause.field == "spec.engine.recipe"
    assert cause.reason == "FieldValueNotSupported"


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        (
            "Deployment",
            {"resources": {"devices": [{"count": 0}]}},
            "spec.resources.devices[0].count",
        ),
        (
            "Deployment",
            {"resources": {"devices": [{"name": "gpu"}, {"name": "gpu"}]}},
            "spec.resources.devices[1].name",
        ),
        (
            "Deployment",
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
            "spec.autoscaling.minReplicas",
        ),
        (
            "Deployment",
            {"autoscaling": {"panicWindowSeconds": 90}},
            "spec.autoscaling.panicWindowSeconds",
        ),
        ("Deployment", {"engine": {"recipe": "custom"}}, "spec.engine.command"),
        ("Deployment", {"engine": {"env": {"1BAD": "x"}}}, "spec.engine.env"),
        ("Deployment", {"resources": {"memory": "16 gigs"}}, "spec.resources.memory"),
        ("Deployment", {"rollout": {"maxSurge": "150%"}}, "spec.rollout.maxSurge"),
        (
            "Deployment",
            {"rollout": {"maxSurge": 0, "maxUnavailable": "0%"}},
            "spec.rollout.maxSurge",
        ),
        (
            "Deployment",
            {
                "placement": {
                    "clusterSelector": {"matchExpressions": [{"key": "tier", "operator": "In"}]}
                }
            },
            "spec.placement.clusterSelector.matchExpressions[0].values",
        ),
        (
            "Model",
            {
                "versions": [
                    {"name": "v1", "source": "hf://a/b"},
                    {"name": "v2", "source": "hf://a/b"},
                    {"name": "v1", "source": "hf://a/c"},
                ]
            },
            "spec.versions[2].name",
        ),
        ("Model", {"versions": []}, "spec.versions"),
        ("Model", {"versions": [{"name": "v1", "source": "ftp://x/y"}]}, "spec.versions[0].source"),
        (
            "Model",
            {"versions": [{"name": "v1", "source": "hf://a/b", "metadata": {"tags": ["x"]}}]},
            "spec.versions[0].metadata[tags]",
        ),
        (
            "Pool",
            {"devicesPerNode": [{"capacity": {"memory": "lots"}}]},
            "spec.devicesPerNode[0].capacity[memory]",
        ),
        (
            "Service",
            {"routes": [{"deployment": "a", "endpoint": "b"}]},
            "spec.routes[0].deployment",
        ),
        ("Service", {"routes": [{"deployment": "a"}, {"deployment": "a"}]}, "spec.routes[1]"),
        ("Service", {"routes": [{"deployment": "a", "weight": 0}]}, "spec.routes"),
        ("Service", {"sessionHeader": "x session"}, "spec.sessionHeader"),
        ("Endpoint", {"replica": None}, "spec.replica"),
        ("Endpoint", {"url": "127.0.0.1:8001"}, "spec.url"),
        (
            "Endpoint",
            {"external": True, "replica": None, "apiKeySecretRef": {}},
            "spec.apiKeySecretRef.name",
        ),
        ("ApiKey", {"tokenHash": "abc"}, "spec.tokenHash"),
        ("ApiKey", {"role": "root"}, "spec.role"),
        ("Event", {"reason": "not camel"}, "spec.reason"),
        ("Event", {"count": 0}, "spec.count"),
        ("Cluster", {"runtime": "nomad"}, "spec.runtime"),
        ("Cluster", {"runtime": "slurm", "slurm": {"partition": "a b"}}, "spec.slurm.partition"),
        ("Cluster", {"runtime": "ray", "ray": {"address": "http://x"}}, "spec.ray.address"),
        (
            "Cluster",
            {"kubernetes": {"modelCacheClaim": "Bad_Name"}},
            "spec.kubernetes.modelCacheClaim",
        ),
    ],
)
def test_bad_field_is_named(kind: str, spec: dict[str, Any], field: str) -> None:
    assert _fields(samples.manifest(kind, **spec)) == [field]


def test_bad_label_is_refused_at_labels() -> None:
    doc = samples.manifest("Deployment")
    doc["metadata"]["labels"] = {"bad key!": "x"}
    assert _fields(doc) == ["metadata.labels"]


def test_value_error_prefix_is_dropped() -> None:
    doc = samples.manifest("Deployment")
    doc["metadata"]["name"] = "Chat"
    ((_, message),) = _causes(doc)
    assert message.startswith("'Chat' is not a DNS label")


def test_validate_any_model() -> None:
    with pytest.raises(errors.ValidationFailure) as caught:
        validation.validate(deployments.ScaleSpec, {"replicas": -2})
    assert [c.field for c in caught.value.causes] == ["replicas"]
    assert validation.validate(deployments.ScaleSpec, {"replicas": 2}).replicas == 2


def test_field_path_drops_union_tags_and_key_markers() -> None:
    loc = ("spec", "resources", "devices", 0, "count")
    assert fields.field_path(deployments.Deployment, loc) == "spec.resources.devices[0].count"
    key_loc = ("metadata", "labels", 1, "[key]")
    assert fields.field_path(deployments.Deployment, key_loc) == "metadata.labels[1]"
    assert fields.field_path(deployments.Deployment, ("spec", "nope", 3)) == "spec.nope[3]"


def test_non_string_map_key_is_named() -> None:
    doc = samples.manifest("Deployment", engine={"env": {1: "x"}})
    assert _fields(doc) == ["spec.engine.env[1]"]


class _Left(meta.Model):
    """A union member."""

    n: int
    """A number."""


class _Right(meta.Model):
    """Another union member."""

    s: str
    """A string."""


class _Unions(meta.Model):
    """A model with unions, whose errors carry pydantic's member tags."""

    x: int | list[int]
    """A number or numbers."""
    y: _Left | _Right
    """One of two models."""


def test_union_member_tags_are_dropped() -> None:
    with pytest.raises(ValidationError) as caught:
        _Unions.model_validate({"x": ["a"], "y": {"n": "q"}})
    found = {c.field for c in validation.causes(caught.value, _Unions)}
    assert found == {"x", "x[0]", "y.n", "y.s"}


def test_non_mapping_document_is_refused() -> None:
    with pytest.raises(errors.ValidationFailure, match="expected an object, got list"):
        validation.parse_object(["not", "an", "object"])  # type: ignore[arg-type]
