"""Every kind: registered, minimal manifests validate, defaults filled, every field documented."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from inferplane.api import (
    deployments,
    errors,
    fields,
    meta,
    models,
    registry,
    replicas,
    services,
    validation,
)

from . import samples

FLEET_KINDS = {"Cluster", "Pool", "ModelCache"}


def _reachable_models(root: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Every model class reachable from `root` through its fields, root included, once each."""
    seen: set[type[BaseModel]] = set()
    pending = [root]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        yield model
        for field in model.model_fields.values():
            for annotation in _annotations(field.annotation):
                child = fields.element_model(annotation)
                if child is not None:
                    pending.append(child)


def _annotations(annotation: object) -> list[object]:
    unwrapped = fields.unwrap(annotation)
    if fields.is_union(unwrapped):
        return list(getattr(unwrapped, "__args__", ()))
    return [unwrapped]


def test_registry_lists_every_kind() -> None:
    assert {info.kind for info in registry.all_kinds()} == set(samples.MINIMAL)


def test_registry_entries_agree_with_models(kind: str) -> None:
    info = registry.lookup(kind)
    assert kind == info.model.KIND
    assert info.namespaced == info.model.NAMESPACED == (kind not in FLEET_KINDS)
    assert registry.by_plural(info.plural) is info
    for name in (kind, kind.upper(), info.plural, *info.short_names):
        assert registry.lookup(name) is info


def test_only_deployment_has_scale() -> None:
    assert [i.kind for i in registry.all_kinds() if i.has_scale] == ["Deployment"]


def test_minimal_manifest_validates_and_fills_defaults(kind: str) -> None:
    obj = validation.parse_object(samples.manifest(kind))
    assert obj.kind == kind
    assert obj.apiVersion == meta.API_VERSION
    assert obj.status.conditions == []
    dumped = obj.to_dict()
    assert set(dumped) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert validation.parse_object(dumped) == obj


def test_deployment_defaults_are_explicit() -> None:
    obj = validation.parse_object(samples.manifest("Deployment"))
    assert isinstance(obj, deployments.Deployment)
    spec = obj.spec
    assert spec.replicas == 1
    assert spec.engine.recipe == "reference"
    assert spec.resources.nodes == 1
    assert spec.placement.strategy == "binpack"
    assert spec.serving.mode == "aggregated"
    assert spec.rollout.maxSurge == 1
    assert spec.autoscaling is None
    assert not spec.autoscaling_enabled()
    assert obj.status.phase == "Pending"


def test_autoscaling_target_defaults_by_metric() -> None:
    spec = deployments.DeploymentSpec.model_validate(
        {"model": "m", "autoscaling": {"metric": "kvCacheUsage"}}
    )
    assert spec.autoscaling is not None
    assert spec.autoscaling.target == 0.8
    assert spec.autoscaling_enabled()


def test_service_name_defaults_to_object_name() -> None:
    svc = validation.parse_object(samples.manifest("Service"))
    assert isinstance(svc, services.Service)
    assert svc.served_name() == "sample"
    named = validation.parse_object(samples.manifest("Service", modelName="meta-llama/Llama-3"))
    assert isinstance(named, services.Service)
    assert named.served_name() == "meta-llama/Llama-3"


def test_api_key_token_appears_only_when_set() -> None:
    key = validation.parse_object(samples.manifest("ApiKey"))
    assert "token" not in key.to_dict()["status"]
    assert key.to_dict()["spec"]["role"] == "viewer"


def test_replica_binding() -> None:
    rep = validation.parse_object(samples.manifest("Replica"))
    assert isinstance(rep, replicas.Replica)
    assert not rep.spec.is_bound()
    bound = rep.spec.model_copy(update={"cluster": "eu-1", "pool": "h100"})
    assert bound.is_bound()


@pytest.mark.parametrize(
    ("wanted", "stages", "expected"),
    [
        (None, ["staging", "production", "production", "staging"], "v2"),
        (None, ["staging", "staging"], "v1"),
        (None, ["archived"], None),
        ("v0", ["production", "staging"], "v0"),
        ("v0", ["archived", "staging"], None),
        ("v9", ["production"], None),
    ],
)
def test_model_resolve_version(wanted: str | None, stages: list[str], expected: str | None) -> None:
    versions = [
        {"name": f"v{i}", "source": "file:///models/m", "stage": stage}
        for i, stage in enumerate(stages)
    ]
    spec = models.ModelSpec.model_validate({"versions": versions})
    resolved = spec.resolve_version(wanted)
    assert (resolved.name if resolved else None) == expected


def test_every_field_has_a_description(kind: str) -> None:
    undocumented = [
        f"{model.__name__}.{name}"
        for model in _reachable_models(registry.lookup(kind).model)
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert undocumented == []


def test_every_model_has_a_docstring(kind: str) -> None:
    bare = [m.__name__ for m in _reachable_models(registry.lookup(kind).model) if not m.__doc__]
    assert bare == []


@pytest.mark.parametrize("name", ["Chat", "chat_1", "-chat", "chat-", "a" * 64, "", "chat.v1"])
def test_names_must_be_dns_labels(kind: str, name: str) -> None:
    doc = samples.manifest(kind)
    doc["metadata"]["name"] = name
    with pytest.raises(errors.ValidationFailure) as caught:
        validation.parse_object(doc)
    assert [c.field for c in caught.value.causes] == ["metadata.name"]


def test_unknown_spec_field_is_named(kind: str) -> None:
    doc = samples.manifest(kind, replicaz=3)
    with pytest.raises(errors.ValidationFailure) as caught:
        validation.parse_object(doc)
    (cause,) = caught.value.causes
    assert cause.field == "spec.replicaz"
    assert cause.message.startswith("unknown field; valid fields: ")
