"""JSON Schemas for editors: one per kind and one for any manifest."""

from __future__ import annotations

import json

from inferplane.api import registry, schema


def test_each_kind_has_a_json_serializable_schema(kind: str) -> None:
    doc = schema.json_schema(kind)
    assert json.loads(json.dumps(doc)) == doc
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"https://inferplane.dev/schemas/v1/{kind.lower()}.json"
    assert doc["title"] == kind
    assert doc["required"][:3] == ["apiVersion", "kind", "metadata"]
    assert doc["properties"]["kind"]["const"] == kind
    assert doc["additionalProperties"] is False


def test_descriptions_are_unwrapped() -> None:
    doc = schema.json_schema("Deployment")
    metric = doc["$defs"]["AutoscalingSpec"]["properties"]["metric"]
    assert "\n" not in metric["description"]
    assert metric["description"].startswith("What load is measured by")


def test_manifest_schema_has_a_branch_per_kind() -> None:
    doc = schema.manifest_schema()
    json.dumps(doc)
    names = {ref["$ref"].rsplit("/", 1)[1] for ref in doc["oneOf"]}
    assert names == {info.kind for info in registry.all_kinds()}
    assert all("kind" in doc["$defs"][name]["required"] for name in names)


def test_all_schemas_by_file_name() -> None:
    files = schema.all_schemas()
    assert "deployment.json" in files
    assert len(files) == len(registry.all_kinds())
