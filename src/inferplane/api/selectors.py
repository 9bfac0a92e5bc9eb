"""Label and field selectors with Kubernetes' syntax and meaning.

Label selectors: `app=chat,tier!=dev,env in (a,b),env notin (c),gpu,!legacy`; terms are ANDed.
`!=` and `notin` also match objects without the label, as in Kubernetes. Field selectors:
`spec.cluster=eu-1,metadata.name!=x` over dotted paths of an object dict; values compare as
strings and a missing path reads as ''. All parsing and matching here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from inferplane.api import errors, meta
from inferplane.api.errors import SelectorError

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]

_SET_TERM = re.compile(r"^(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_TERM = re.compile(r"^(?P<key>[^\s!=()]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^\s!=(),]*)$")
_FIELD_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: key, operator and the values it compares with."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        return labels.get(self.key) not in self.values

    def __str__(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        if len(self.values) == 1:
            (value,) = self.values
            return f"{self.key}{'=' if self.operator == 'In' else '!='}{value}"
        word = "in" if self.operator == "In" else "notin"
        return f"{self.key} {word} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def parse_label_selector(text: str) -> Selector:
    """Parse Kubernetes label selector syntax; raise SelectorError naming the bad term."""
    return Selector(tuple(_parse_label_term(term) for term in _split_terms(text)))


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses, dropping empty input; refuse empty terms."""
    if not text.strip():
        return []
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth not in (0, 1):
            raise SelectorError(f"unbalanced parentheses in selector {text!r}")
        if char == "," and depth == 0:
            terms.append(text[start:i].strip())
            start = i + 1
    if depth != 0:
        raise SelectorError(f"unbalanced parentheses in selector {text!r}")
    terms.append(text[start:].strip())
    if "" in terms:
        raise SelectorError(f"empty term in selector {text!r}")
    return terms


def _parse_label_term(term: str) -> Requirement:
    if match := _SET_TERM.match(term):
        values = [v.strip() for v in match["values"].split(",")]
        if values == [""]:
            raise SelectorError(f"term {term!r}: {match['op']} needs at least one value")
        operator: Operator = "In" if match["op"] == "in" else "NotIn"
        return _requirement(term, match["key"], operator, values)
    if match := _EQ_TERM.match(term):
        operator = "NotIn" if match["op"] == "!=" else "In"
        return _requirement(term, match["key"], operator, [match["value"]])
    if term.startswith("!"):
        return _requirement(term, term[1:].strip(), "DoesNotExist", [])
    return _requirement(term, term, "Exists", [])


def _requirement(term: str, key: str, operator: Operator, values: list[str]) -> Requirement:
    try:
        meta.check_label_key(key)
        for value in values:
            meta.check_label_value(value)
    except ValueError as exc:
        raise SelectorError(f"term {term!r}: {exc}") from exc
    return Requirement(key, operator, frozenset(values))


def selector_from(match_labels: Mapping[str, str], expressions: list[Requirement]) -> Selector:
    """The selector of a matchLabels map plus matchExpressions, ANDed."""
    equals = [Requirement(k, "In", frozenset([v])) for k, v in sorted(match_labels.items())]
    return Selector((*equals, *expressions))


class LabelSelectorRequirement(meta.Model):
    """One expression of a label selector, e.g. {key: tier, operator: In, values: [gold]}."""

    key: meta.LabelKey
    """The label key the expression is about."""
    operator: Operator
    """In, NotIn (also true when the label is absent), Exists or DoesNotExist."""
    values: list[meta.LabelValue] = Field(default_factory=list)
    """Values for In and NotIn (at least one); must be empty for Exists and DoesNotExist."""

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        wants_values = self.operator in ("In", "NotIn")
        if wants_values and not self.values:
            raise errors.field_error("values", message=f"{self.operator} needs at least one value")
        if not wants_values and self.values:
            raise errors.field_error("values", message=f"{self.operator} takes no values")
        return self

    def requirement(self) -> Requirement:
        return Requirement(self.key, self.operator, frozenset(self.values))


class LabelSelector(meta.Model):
    """Selects objects by their labels; every condition must hold. Empty selects everything."""

    matchLabels: meta.Labels = Field(default_factory=dict)
    """Labels that must be present with exactly these values."""
    matchExpressions: list[LabelSelectorRequirement] = Field(default_factory=list)
    """Further expressions over labels (In, NotIn, Exists, DoesNotExist)."""

    def selector(self) -> Selector:
        return selector_from(self.matchLabels, [e.requirement() for e in self.matchExpressions])

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.selector().matches(labels)


@dataclass(frozen=True)
class FieldRequirement:
    """One term of a field selector: a dotted path, equal or not equal to a value."""

    path: str
    equal: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.path) == self.value) == self.equal

    def __str__(self) -> str:
        return f"{self.path}{'=' if self.equal else '!='}{self.value}"


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field requirements; the empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse `path=value`, `path==value`, `path!=value` terms joined by commas."""
    return FieldSelector(tuple(_parse_field_term(term) for term in _split_terms(text)))


def _parse_field_term(term: str) -> FieldRequirement:
    path, op, value = _split_field_term(term)
    if not _FIELD_PATH.match(path):
        raise SelectorError(f"term {term!r}: {path!r} is not a dotted field path")
    return FieldRequirement(path, op != "!=", value)


def _split_field_term(term: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        path, found, value = term.partition(op)
        if found:
            return path.strip(), op, value.strip()
    raise SelectorError(f"term {term!r}: expected path=value, path==value or path!=value")


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted path as a string; '' where the path is missing or null."""
    node: Any = obj
    for segment in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(segment)
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return ""
    return _as_text(node)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
