"""Device selectors: CEL expressions over one device, shaped as Kubernetes DRA shapes it.

A selector sees `device.driver`, `device.attributes[DOMAIN].NAME` and
`device.capacity[DOMAIN].NAME` (a quantity), so selectors from DRA ResourceClaims or
Modelplane manifests carry over unchanged. A pool's DeviceGroup keys map onto that shape by
DRA's rule: `gpu.nvidia.com/productName` is domain gpu.nvidia.com, name productName; a bare
`productName` belongs to the group's driver (see `fleet.DeviceGroup.qualified`). As in
Kubernetes, an unknown domain reads as an empty map, so `"amd.com" in device.attributes` and
`device.attributes["amd.com"].size() == 0` work on any device.

Evaluation uses cel-python (`celpy`) with Kubernetes' quantity library added
(`policy.quantities`). Compiling and matching are pure functions of their text and device
group, memoised, so a fleet of thousands of identical pools costs one evaluation per
(selector, kind of device).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy import celtypes, evaluation

from inferplane.api import deployments, errors, fleet
from inferplane.policy import quantities

MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
"""CEL macros: their first argument binds a variable instead of being evaluated."""
KNOWN_FUNCTIONS = (
    frozenset(name for name in evaluation.base_functions if name[0] not in "_!-")
    | frozenset(quantities.FUNCTIONS)
    | MACROS
)
"""Functions and methods a selector may call: CEL's standard ones and the quantity library."""
ROOT = "device"
"""The one variable a selector sees."""


class SelectorError(ValueError):
    """A selector that does not compile; the message says where and why."""


@dataclass(frozen=True)
class Selector:
    """One compiled selector, ready to evaluate against any number of devices."""

    text: str
    program: celpy.Runner


@dataclass(frozen=True)
class Match:
    """Whether a device satisfies a selector; an evaluation error counts as no match."""

    ok: bool
    error: str = ""
    """Why evaluation failed (e.g. a missing attribute), for unschedulable reasons."""


@functools.cache
def _environment() -> celpy.Environment:
    """One CEL environment for the process, built on first use: building it compiles the
    grammar (over 100 ms), which a control plane that never sees a selector need not pay.

    celpy raises the interpreter's recursion limit as it starts; a library should not change
    process-wide settings, and selectors (a hundred terms ANDed included) evaluate well within
    the default, so the caller's limit is put back."""
    limit = sys.getrecursionlimit()
    environment = celpy.Environment()
    sys.setrecursionlimit(limit)
    return environment


@functools.lru_cache(maxsize=4096)
def compile_selector(text: str) -> Selector:
    """Parse and check a selector once; raise SelectorError with the position and cause."""
    try:
        tree = _environment().compile(text)
    except celpy.CELParseError as exc:
        raise SelectorError(_syntax_message(exc)) from exc
    unknown = sorted(_unknown_names(tree))
    if unknown:
        raise SelectorError(f"undeclared reference to {', '.join(unknown)}")
    return Selector(text, _environment().program(tree, functions=dict(quantities.FUNCTIONS)))


def check(text: str) -> str | None:
    """The compile error of a selector, or None when it compiles (for admission)."""
    try:
        compile_selector(text)
    except SelectorError as exc:
        return str(exc)
    return None


def selector_causes(requests: Sequence[deployments.DeviceRequest]) -> list[errors.Cause]:
    """A cause for each device selector that does not compile, named by its field path
    (spec.resources.devices[i].selectors[j]): admission refuses them with a 422, and
    `schedule --dry-run` with the same message, so a typo never becomes a replica that
    silently schedules nowhere."""
    return [
        errors.Cause(f"spec.resources.devices[{i}].selectors[{j}]", f"invalid CEL: {problem}")
        for i, request in enumerate(requests)
        for j, text in enumerate(request.selectors)
        if (problem := check(text)) is not None
    ]


def _syntax_message(exc: celpy.CELParseError) -> str:
    where = (
        f"line {exc.line}, column {exc.column}" if (exc.line or 1) > 1 else f"column {exc.column}"
    )
    return f"syntax error at {where}: {_unexpected(exc.__context__)}"


def _unexpected(cause: BaseException | None) -> str:
    """What lark tripped over, in words (celpy keeps lark's exception as the context)."""
    if isinstance(cause, lark.exceptions.UnexpectedToken):
        if cause.token.type == "$END":
            return "unexpected end of expression"
        return f"unexpected {str(cause.token)!r}"
    if isinstance(cause, lark.exceptions.UnexpectedCharacters):
        return f"unexpected character {cause.char!r}"
    return "not a CEL expression"


def _unknown_names(tree: lark.Tree) -> set[str]:
    """Functions CEL would only reject when evaluating, and free variables other than device.

    celpy resolves names at evaluation time; Kubernetes refuses them when a manifest is
    written, and so do we, so that a typo is a 422 instead of a replica that never schedules.
    """
    # Type names (int, string ...) may stand as values, e.g. type(x) == int.
    known_variables = {ROOT, *_macro_variables(tree), *evaluation.base_functions}
    unknown: set[str] = set()
    for node in tree.iter_subtrees():
        if node.data == "ident_arg" and str(node.children[0]) not in KNOWN_FUNCTIONS:
            unknown.add(f"function {node.children[0]}()")
        elif node.data == "member_dot_arg" and str(node.children[1]) not in KNOWN_FUNCTIONS:
            unknown.add(f"method .{node.children[1]}()")
        elif node.data == "ident" and str(node.children[0]) not in known_variables:
            unknown.add(f"variable {node.children[0]}")
    return unknown


def _macro_variables(tree: lark.Tree) -> set[str]:
    """Names bound by `list.exists(x, ...)` and the other comprehension macros."""
    names: set[str] = set()
    for node in tree.iter_subtrees():
        if node.data == "member_dot_arg" and str(node.children[1]) in MACROS:
            args = node.children[2] if len(node.children) > 2 else None
            if isinstance(args, lark.Tree) and args.children:
                names.update(_identifiers(args.children[0]))
    return names


def _identifiers(tree: Any) -> Iterable[str]:
    if isinstance(tree, lark.Tree):
        for node in tree.iter_subtrees():
            if node.data == "ident":
                yield str(node.children[0])


# --- devices as CEL values ---------------------------------------------------------------

GroupKey = tuple[str, tuple[tuple[str, str, Any], ...], tuple[tuple[str, str], ...]]
"""What a selector can see of a device group, hashable: driver, attributes, capacity."""


def group_key(group: fleet.DeviceGroup) -> GroupKey:
    """Two groups with equal keys match the same selectors (the name and count do not show)."""
    # The type name keeps 1, 1.0 and True apart: they hash alike but CEL tells them apart.
    attributes = tuple(sorted((k, type(v).__name__, v) for k, v in group.attributes.items()))
    return group.driver, attributes, tuple(sorted(group.capacity.items()))


class _Domains(celtypes.MapType):
    """device.attributes and device.capacity: an unknown domain reads as an empty map."""

    def __getitem__(self, key: Any) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            return celtypes.MapType()


def device_value(key: GroupKey) -> celtypes.MapType:
    """The `device` variable for one device of a group, from the group's key."""
    driver, attribute_items, capacity_items = key
    attributes: dict[str, dict[str, Any]] = {}
    for name_key, _type, value in attribute_items:
        domain, name = fleet.qualify(driver, name_key)
        attributes.setdefault(domain, {})[name] = _scalar(value)
    capacity: dict[str, dict[str, Any]] = {}
    for name_key, amount in capacity_items:
        domain, name = fleet.qualify(driver, name_key)
        capacity.setdefault(domain, {})[name] = quantities.Quantity.parse(amount)
    return celtypes.MapType(
        {
            celtypes.StringType("driver"): celtypes.StringType(driver),
            celtypes.StringType("attributes"): _domains(attributes),
            celtypes.StringType("capacity"): _domains(capacity),
        }
    )


def _domains(by_domain: dict[str, dict[str, Any]]) -> _Domains:
    return _Domains(
        {
            celtypes.StringType(domain): celtypes.MapType(
                {celtypes.StringType(name): value for name, value in names.items()}
            )
            for domain, names in by_domain.items()
        }
    )


def _scalar(value: str | int | float | bool) -> Any:
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    return celtypes.StringType(value)


def matches(text: str, group: fleet.DeviceGroup) -> Match:
    """Whether every device of the group satisfies the selector (they are identical)."""
    return matches_key(text, group_key(group))


@functools.lru_cache(maxsize=65536)
def matches_key(text: str, key: GroupKey) -> Match:
    """matches() for a group known by its key; memoised, as it is a pure function."""
    return _evaluate(compile_selector(text), key)


def _evaluate(selector: Selector, key: GroupKey) -> Match:
    try:
        result = selector.program.evaluate({ROOT: device_value(key)})
    except evaluation.CELEvalError as exc:
        return Match(False, _eval_message(exc))
    if isinstance(result, evaluation.CELEvalError):
        return Match(False, _eval_message(result))
    if not isinstance(result, celtypes.BoolType):
        return Match(False, f"selector gave {type(result).__name__}, not a boolean")
    return Match(bool(result))


def _eval_message(exc: evaluation.CELEvalError) -> str:
    # celpy puts its own category first ("return error for overflow") and the Python error's
    # arguments third; the latter says more. Unknown names carry the whole activation: cut it.
    cause = exc.args[2] if len(exc.args) > 2 and exc.args[2] else ()
    text = str(cause[0]) if cause else (str(exc.args[0]) if exc.args else "evaluation failed")
    return text.split(" (in activation")[0]
