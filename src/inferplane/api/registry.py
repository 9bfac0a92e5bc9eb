"""Looking kinds up by any of their names, in the table of `kinds.ALL`.

Every consumer (store, server, CLI, explain) looks kinds up here. The table is read once, at
import: there is nothing to register and no import order to get right.
"""

from __future__ import annotations

from types import MappingProxyType

from inferplane.api import kinds

KindInfo = kinds.KindInfo
"""The entry of one kind; defined beside the table, named here too for the consumers."""


class UnknownKindError(LookupError):
    """Raised for a kind name no entry answers to; the message lists the known kinds."""


def _index() -> MappingProxyType[str, KindInfo]:
    """Every name a kind answers to, lowercase: kind (singular), plural and short names."""
    names: dict[str, KindInfo] = {}
    for info in kinds.ALL:
        for name in (info.singular, info.plural, *info.short_names):
            if names.setdefault(name, info) is not info:
                raise ValueError(f"{name!r} names both {names[name].kind} and {info.kind}")
    return MappingProxyType(names)


_BY_NAME = _index()
_BY_PLURAL = MappingProxyType({info.plural: info for info in kinds.ALL})


def all_kinds() -> list[KindInfo]:
    return list(kinds.ALL)


def lookup(name: str) -> KindInfo:
    """Resolve a kind from its kind, singular, plural or short name, case-insensitively."""
    info = _BY_NAME.get(name.lower())
    if info is None:
        known = ", ".join(sorted(entry.kind for entry in kinds.ALL))
        raise UnknownKindError(f"unknown kind {name!r}; known kinds: {known}")
    return info


def by_plural(plural: str) -> KindInfo:
    try:
        return _BY_PLURAL[plural]
    except KeyError:
        raise UnknownKindError(f"unknown resource {plural!r}") from None
