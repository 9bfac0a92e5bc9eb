"""JSON Schemas (draft 2020-12) of the kinds, for editors and other tools.

Point VS Code's YAML extension at one, e.g. with a first line
`# yaml-language-server: $schema=https://inferplane.dev/schemas/v1/deployment.json` or a
`yaml.schemas` setting mapping a file written by `json_schema("Deployment")`, and manifests get
completion, hover docs (the field docstrings) and errors as you type.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic.json_schema import models_json_schema

from inferplane.api import registry

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_URL = "https://inferplane.dev/schemas/v1/"
MANIFEST_REQUIRED = ["apiVersion", "kind", "metadata"]
"""What a manifest must spell out even where the model has a default: parse_object needs them."""


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one kind, by any of its names (Deployment, deploy, deployments)."""
    info = registry.lookup(kind)
    schema = _tidy(info.model.model_json_schema(mode="validation"))
    schema["required"] = _manifest_required(schema)
    return {"$schema": DIALECT, "$id": f"{BASE_URL}{info.singular}.json", **schema}


def manifest_schema() -> dict[str, Any]:
    """One schema for a document of any kind: each kind is a branch told apart by `kind`."""
    models = [(info.model, "validation") for info in registry.all_kinds()]
    refs, top = models_json_schema(models, title="inferplane manifest")  # type: ignore[arg-type]
    defs = _tidy(top)["$defs"]
    for ref in refs.values():
        branch = defs[ref["$ref"].rsplit("/", 1)[1]]
        branch["required"] = _manifest_required(branch)
    return {
        "$schema": DIALECT,
        "$id": f"{BASE_URL}manifest.json",
        "title": "inferplane manifest",
        "oneOf": list(refs.values()),
        "$defs": defs,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name (deployment.json ...) to schema, for every kind."""
    return {f"{info.singular}.json": json_schema(info.kind) for info in registry.all_kinds()}


def _manifest_required(schema: dict[str, Any]) -> list[str]:
    required: list[str] = schema.get("required", [])
    return [*MANIFEST_REQUIRED, *(name for name in required if name not in MANIFEST_REQUIRED)]


def _tidy(node: Any) -> Any:
    """Unwrap the docstrings' hard line breaks in every description, keeping paragraphs."""
    if isinstance(node, dict):
        return {key: _tidy_value(key, value) for key, value in node.items()}
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    return node


def _tidy_value(key: str, value: Any) -> Any:
    if key == "description" and isinstance(value, str):
        return "\n\n".join(re.sub(r"\s+", " ", p).strip() for p in value.split("\n\n"))
    return _tidy(value)
