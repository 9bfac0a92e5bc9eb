"""The table of kinds: names, plural and short names, scope and schema.

Every consumer (store, server, CLI, explain) looks kinds up here, so adding a kind is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferplane.api import meta


class UnknownKindError(LookupError):
    """Raised for a kind name no entry answers to; the message lists the known kinds."""


@dataclass(frozen=True)
class KindInfo:
    kind: str
    """CamelCase kind, e.g. Deployment."""
    plural: str
    """Lowercase plural used in URLs, e.g. deployments."""
    model: type[meta.Resource[Any, Any]]
    """The pydantic model of the whole object."""
    namespaced: bool = True
    """False for fleet-scoped kinds (Cluster, Pool, ModelCache)."""
    short_names: tuple[str, ...] = field(default=())
    """Abbreviations accepted by the CLI, e.g. deploy."""
    has_scale: bool = False
    """True when the kind serves the scale subresource (spec.replicas)."""

    @property
    def singular(self) -> str:
        return self.kind.lower()


_KINDS: dict[str, KindInfo] = {}


def register(info: KindInfo) -> KindInfo:
    _KINDS[info.kind] = info
    return info


def all_kinds() -> list[KindInfo]:
    _load()
    return list(_KINDS.values())


def lookup(name: str) -> KindInfo:
    """Resolve a kind from its kind, singular, plural or short name, case-insensitively."""
    _load()
    wanted = name.lower()
    for info in _KINDS.values():
        if wanted in (info.singular, info.plural, *info.short_names):
            return info
    known = ", ".join(sorted(_KINDS))
    raise UnknownKindError(f"unknown kind {name!r}; known kinds: {known}")


def by_plural(plural: str) -> KindInfo:
    _load()
    for info in _KINDS.values():
        if info.plural == plural:
            return info
    raise UnknownKindError(f"unknown resource {plural!r}")


def _load() -> None:
    # Importing the kinds module registers every kind; done lazily to avoid an import cycle.
    from inferplane.api import kinds  # noqa: F401
