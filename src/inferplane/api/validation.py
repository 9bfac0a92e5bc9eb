"""Validating objects of any kind, with errors that name each bad field by its path.

parse_object turns a plain dict (from YAML or JSON) into the kind's model; every failure becomes
a ValidationFailure whose causes read like `spec.resources.devices[0].count: ...`, the shape the
resource API answers 422 with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from inferplane.api import errors, fields, meta, registry
from inferplane.api.errors import Cause, ValidationFailure

ModelT = TypeVar("ModelT", bound=BaseModel)

_REASONS = {
    "missing": "FieldValueRequired",
    "literal_error": "FieldValueNotSupported",
    "enum": "FieldValueNotSupported",
    "too_long": "FieldValueTooMany",
}


def parse_object(doc: Mapping[str, Any]) -> meta.Resource[Any, Any]:
    """Validate a whole object of any registered kind, filling defaults.

    Raises ValidationFailure when apiVersion or kind is missing or wrong, or when the object
    does not match its kind's schema; each cause names the field.
    """
    if not isinstance(doc, Mapping):
        raise ValidationFailure([Cause("", f"expected an object, got {type(doc).__name__}")])
    kind, name = _identity(doc)
    info = _kind_info(doc)
    return validate(info.model, doc, kind=kind, name=name)


def validate(model: type[ModelT], data: Any, *, kind: str = "", name: str = "") -> ModelT:
    """model.model_validate(data), raising ValidationFailure with field-path causes."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailure(causes(exc, model), kind=kind, name=name) from exc


def causes(exc: ValidationError, root: type[BaseModel]) -> list[Cause]:
    """One cause per pydantic error, its location rendered as a field path under `root`."""
    return [_cause(error, root) for error in exc.errors(include_url=False)]


def _cause(error: ErrorDetails, root: type[BaseModel]) -> Cause:
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    message = error["msg"]
    if error["type"] == errors.NESTED_ERROR:
        loc, message = loc + tuple(ctx["at"]), str(ctx["message"])
    elif error["type"] == "value_error" and "error" in ctx:
        message = str(ctx["error"])
    elif error["type"] == "extra_forbidden":
        message = _unknown_field_message(root, loc)
    reason = _REASONS.get(error["type"], "FieldValueInvalid")
    return Cause(fields.field_path(root, loc), message, reason)


def _unknown_field_message(root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    parent = fields.as_model(fields.resolve(root, loc[:-1])[1])
    if parent is None:
        return "unknown field"
    return "unknown field; valid fields: " + ", ".join(parent.model_fields)


def _identity(doc: Mapping[str, Any]) -> tuple[str, str]:
    kind = doc.get("kind")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return (kind if isinstance(kind, str) else ""), (name if isinstance(name, str) else "")


def _kind_info(doc: Mapping[str, Any]) -> registry.KindInfo:
    problems = [c for c in (_api_version_cause(doc), _kind_cause(doc)) if c is not None]
    if problems:
        kind, name = _identity(doc)
        raise ValidationFailure(problems, kind=kind, name=name)
    return registry.lookup(doc["kind"])


def _api_version_cause(doc: Mapping[str, Any]) -> Cause | None:
    version = doc.get("apiVersion")
    if version is None:
        return Cause("apiVersion", f"required; use {meta.API_VERSION}", "FieldValueRequired")
    if version != meta.API_VERSION:
        message = f"unsupported version {version!r}; use {meta.API_VERSION}"
        return Cause("apiVersion", message, "FieldValueNotSupported")
    return None


def _kind_cause(doc: Mapping[str, Any]) -> Cause | None:
    kind = doc.get("kind")
    if kind is None:
        return Cause("kind", "required, e.g. Deployment", "FieldValueRequired")
    known = [info.kind for info in registry.all_kinds()]
    if kind not in known:
        message = f"unknown kind {kind!r}; known kinds: {', '.join(sorted(known))}"
        return Cause("kind", message, "FieldValueNotSupported")
    return None
