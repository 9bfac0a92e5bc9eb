"""Walking the schemas by their type annotations: field paths, child models, type names.

Validation errors, explain and anything else that follows a path through a kind's schema share
these few functions, so `spec.resources.devices[0].count` means the same thing everywhere.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

_PRIMITIVES: dict[Any, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    datetime: "timestamp",
    type(None): "null",
    Any: "any",
}


def unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional (X | None) wrappers off a type."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif is_union(annotation) and len(members := _non_null(annotation)) == 1:
            annotation = members[0]
        else:
            return annotation


def is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _non_null(annotation: Any) -> list[Any]:
    return [a for a in get_args(annotation) if a is not type(None)]


def as_model(annotation: Any) -> type[BaseModel] | None:
    """The model class the annotation names, if it names one (after unwrapping)."""
    annotation = unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def element_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds directly, or as the items of its list or values of its map."""
    annotation = unwrap(annotation)
    if get_origin(annotation) in (list, dict):
        annotation = get_args(annotation)[-1]
    return as_model(annotation)


def step(annotation: Any, segment: str | int) -> tuple[Any, str]:
    """Follow one segment of a pydantic error location: the type below it, and its text in a
    field path ('.name', '[0]', '[key]', or '' for pydantic's internal union tags)."""
    annotation = unwrap(annotation)
    origin = get_origin(annotation)
    if segment == "[key]":
        return Any, ""
    if isinstance(segment, int):
        return (get_args(annotation)[0] if origin is list else Any), f"[{segment}]"
    if (model := as_model(annotation)) is not None:
        field = model.model_fields.get(segment)
        return (field.annotation if field is not None else Any), f".{segment}"
    if origin is dict:
        return get_args(annotation)[1], f"[{segment}]"
    if is_union(annotation):
        return _union_member(annotation, segment), ""
    return Any, f".{segment}"


def _union_member(annotation: Any, tag: str) -> Any:
    for member in _non_null(annotation):
        if getattr(unwrap(member), "__name__", None) == tag:
            return member
    return Any


def resolve(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, Any]:
    """The field path a pydantic error location names, and the type found there."""
    annotation: Any = root
    path = ""
    for segment in loc:
        annotation, text = step(annotation, segment)
        path += text
    return path.lstrip("."), annotation


def field_path(root: type[BaseModel], loc: Sequence[str | int]) -> str:
    """Render an error location as a path like spec.resources.devices[0].count."""
    return resolve(root, loc)[0]


def type_name(annotation: Any) -> str:
    """A kubectl-explain style type name: string, integer, []Object, map[string]string ..."""
    annotation = unwrap(annotation)
    origin = get_origin(annotation)
    if as_model(annotation) is not None:
        return "Object"
    if origin is list:
        return "[]" + type_name(get_args(annotation)[0])
    if origin is dict:
        key, value = get_args(annotation)
        return f"map[{type_name(key)}]{type_name(value)}"
    if origin is Literal:
        return "|".join(dict.fromkeys(type_name(type(v)) for v in get_args(annotation)))
    if is_union(annotation):
        return "|".join(type_name(a) for a in get_args(annotation))
    return _PRIMITIVES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def enum_values(annotation: Any) -> list[str]:
    """The allowed values of a Literal field, as text; empty for anything else."""
    annotation = unwrap(annotation)
    if get_origin(annotation) is Literal:
        return [str(v) for v in get_args(annotation)]
    return []
