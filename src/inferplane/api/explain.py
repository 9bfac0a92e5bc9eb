"""Documentation of any field of any kind, from the schemas themselves, like `kubectl explain`.

explain("deploy.spec.autoscaling") resolves the kind through the registry (any of its names,
case-insensitively), walks the fields, and prints the field's type and docstring and those of
its children. Every word comes from the field docstrings, so the docs cannot drift.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from inferplane.api import fields, meta, registry
from inferplane.api.errors import ExplainError

_WIDTH = 80


@dataclass(frozen=True)
class _Target:
    """What a path resolved to: the kind, the field (None for the kind itself), its model."""

    info: registry.KindInfo
    name: str | None
    field: FieldInfo | None
    model: type[BaseModel] | None


def explain(path: str, *, recursive: bool = False) -> str:
    """Describe the kind or field at `path` (Kind[.field...]); recursive lists the whole tree.

    Raises ExplainError naming the first unknown segment and listing the valid ones.
    """
    target = _resolve(path)
    lines = [f"KIND:     {target.info.kind}", f"VERSION:  {meta.API_VERSION}", ""]
    if target.field is not None and target.name is not None:
        lines += [f"FIELD: {target.name} <{fields.type_name(target.field.annotation)}>", ""]
    lines += ["DESCRIPTION:", *_indent(_description(target), 4)]
    if target.field is not None:
        lines += _indent(_facts(target.field), 4)
    if target.model is not None:
        lines += ["", "FIELDS:"]
        lines += _tree(target.model, 2, ()) if recursive else _children(target.model)
    return "\n".join(lines).rstrip() + "\n"


def _resolve(path: str) -> _Target:
    kind, *segments = path.strip().split(".")
    try:
        info = registry.lookup(kind)
    except registry.UnknownKindError as exc:
        raise ExplainError(str(exc)) from exc
    target = _Target(info, None, None, info.model)
    walked = info.kind
    for segment in segments:
        target = _child(target, segment, walked)
        walked += f".{target.name}"
    return target


def _child(parent: _Target, segment: str, walked: str) -> _Target:
    if parent.model is None:
        raise ExplainError(f"field {segment!r} not found: {walked} has no fields")
    name = _field_name(parent.model, segment)
    if name is None:
        valid = ", ".join(parent.model.model_fields)
        raise ExplainError(f"field {segment!r} not found in {walked}; valid fields: {valid}")
    field = parent.model.model_fields[name]
    return _Target(parent.info, name, field, fields.element_model(field.annotation))


def _field_name(model: type[BaseModel], segment: str) -> str | None:
    if segment in model.model_fields:
        return segment
    matches = [name for name in model.model_fields if name.lower() == segment.lower()]
    return matches[0] if len(matches) == 1 else None


def _description(target: _Target) -> list[str]:
    paragraphs = [target.field.description or ""] if target.field is not None else []
    if target.model is not None and target.model.__doc__:
        paragraphs.append(inspect.cleandoc(target.model.__doc__))
    unique = [p for p in dict.fromkeys(paragraphs) if p]
    return [line for p in unique for line in (*_wrap(p, 4), "")][:-1] or ["<empty>"]


def _facts(field: FieldInfo) -> list[str]:
    facts = []
    if (default := _default_text(field)) is not None:
        facts.append(f"default: {default}")
    if len(values := fields.enum_values(field.annotation)) > 1:
        facts.append(f"enum: {', '.join(values)}")
    return ["", *facts] if facts else []


def _children(model: type[BaseModel]) -> list[str]:
    lines: list[str] = []
    for name, field in model.model_fields.items():
        lines.append("  " + _heading(name, field))
        lines += _indent(_wrap(_first_paragraph(field), 4), 4)
        if len(values := fields.enum_values(field.annotation)) > 1:
            lines.append(f"    enum: {', '.join(values)}")
        lines.append("")
    return lines


def _tree(model: type[BaseModel], depth: int, ancestors: tuple[type, ...]) -> list[str]:
    lines: list[str] = []
    for name, field in model.model_fields.items():
        required = " -required-" if field.is_required() else ""
        lines.append(" " * depth + f"{name}\t<{fields.type_name(field.annotation)}>{required}")
        child = fields.element_model(field.annotation)
        if child is not None and child not in ancestors:
            lines += _tree(child, depth + 2, (*ancestors, model))
    return lines


def _heading(name: str, field: FieldInfo) -> str:
    heading = f"{name}\t<{fields.type_name(field.annotation)}>"
    if field.is_required():
        return heading + " -required-"
    default = _default_text(field)
    return heading if default is None else f"{heading}\tdefault: {default}"


def _default_text(field: FieldInfo) -> str | None:
    """The default as JSON, or None where there is none worth showing (required, unset, object)."""
    if field.is_required():
        return None
    value: Any = field.get_default(call_default_factory=True)
    if value is None or isinstance(value, BaseModel):
        return None
    return json.dumps(value)


def _first_paragraph(field: FieldInfo) -> str:
    return (field.description or "").split("\n\n")[0]


def _wrap(text: str, indent: int) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), width=_WIDTH - indent) or [""]


def _indent(lines: list[str], spaces: int) -> list[str]:
    return [" " * spaces + line if line else "" for line in lines]
