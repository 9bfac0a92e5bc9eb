"""explain: kubectl-style documentation drawn from the field docstrings."""

from __future__ import annotations

import pytest

from inferplane.api import autoscaling, errors, explain, registry


def test_autoscaling_shows_its_docstrings_types_and_defaults() -> None:
    text = explain.explain("Deployment.spec.autoscaling")
    assert text.startswith("KIND:     Deployment\nVERSION:  inferplane.dev/v1\n")
    assert "FIELD: autoscaling <Object>" in text
    assert "Scale with load; unset keeps replicas fixed." in text
    for name, field in autoscaling.AutoscalingSpec.model_fields.items():
        assert f"\n  {name}\t<" in text
        first_words = " ".join((field.description or "").split()[:4])
        assert first_words in " ".join(text.split())
    assert "maxReplicas\t<integer>\tdefault: 10" in text
    assert "enum: concurrency, rps, tokensPerSecond, kvCacheUsage, waiting" in text


def test_kind_names_resolve_case_insensitively() -> None:
    assert explain.explain("DEPLOY.spec.autoscaling") == explain.explain(
        "deployments.spec.autoscaling"
    )


def test_required_fields_are_marked() -> None:
    text = explain.explain("deploy.spec")
    assert "model\t<string> -required-" in text
    assert "resources\t<Object>" in text


def test_leaf_field_shows_default_and_enum() -> None:
    text = explain.explain("svc.spec.strategy")
    assert "FIELD: strategy <string>" in text
    assert 'default: "least-request"' in text
    assert "enum: round-robin, least-request, power-of-two, session, prefix-aware" in text
    assert "FIELDS:" not in text


def test_lists_of_objects_are_entered() -> None:
    text = explain.explain("model.spec.versions")
    assert "FIELD: versions <[]Object>" in text
    assert "source\t<string> -required-" in text


def test_kind_itself() -> None:
    text = explain.explain("Cluster")
    assert "A workload plane" in text
    assert "spec\t<Object>" in text


def test_recursive_lists_the_tree() -> None:
    text = explain.explain("deploy.spec", recursive=True)
    assert "\n  placement\t<Object>\n    clusterSelector\t<Object>\n      matchLabels\t" in text
    assert "\n        key\t<string> -required-" in text


def test_every_kind_explains_recursively() -> None:
    for info in registry.all_kinds():
        assert f"KIND:     {info.kind}" in explain.explain(info.plural, recursive=True)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("deploy.spec.autoscalin", ["'autoscalin'", "Deployment.spec", "autoscaling", "replicas"]),
        ("deploy.spek", ["'spek'", "metadata", "spec", "status"]),
        ("deploy.spec.replicas.x", ["'x'", "Deployment.spec.replicas has no fields"]),
        ("Pod.spec", ["'Pod'", "Deployment"]),
    ],
)
def test_bad_paths_name_the_segment_and_the_choices(path: str, words: list[str]) -> None:
    with pytest.raises(errors.ExplainError) as caught:
        explain.explain(path)
    for word in words:
        assert word in str(caught.value)
