"""The store's interface: errors, watch events and the abstract `Store`.

Objects are plain JSON dicts in the Kubernetes shape (apiVersion, kind, metadata, spec,
status). The store knows nothing of the schemas in `inferplane.api`; it keeps objects, hands
out a global resourceVersion and logs every change so that watches can resume.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class ObjectError(StoreError):
    """An error about one object; carries its kind, namespace ('' when fleet-scoped) and name."""

    def __init__(self, kind: str, namespace: str, name: str, problem: str) -> None:
        where = f' in namespace "{namespace}"' if namespace else ""
        super().__init__(f'{kind} "{name}"{where} {problem}')
        self.kind = kind
        self.namespace = namespace
        self.name = name


class NotFoundError(ObjectError):
    """No object of that kind, namespace and name."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(kind, namespace, name, "not found")


class AlreadyExistsError(ObjectError):
    """Create of a name that is taken."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(kind, namespace, name, "already exists")


class ConflictError(ObjectError):
    """The caller's resourceVersion is no longer current: re-read and retry."""

    def __init__(
        self, kind: str, namespace: str, name: str, *, expected: int, current: int
    ) -> None:
        problem = f"was modified: resourceVersion {expected} is stale, the current one is {current}"
        super().__init__(kind, namespace, name, problem)
        self.expected = expected
        self.current = current


class GoneError(StoreError):
    """The requested resourceVersion was compacted away: list again and watch from there."""

    def __init__(self, requested: int, *, oldest: int) -> None:
        super().__init__(
            f"resourceVersion {requested} is too old: the oldest one to watch from is {oldest}"
        )
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class WatchEvent:
    """One change, as a watch delivers it."""

    type: EventType
    """ADDED, MODIFIED or DELETED."""
    object: dict[str, Any]
    """The object as of this event; for DELETED, its last state."""
    resource_version: int
    """The resourceVersion of this change; events come in increasing order."""
    previous: dict[str, Any] | None = None
    """For MODIFIED: the object just before this change (None for ADDED and DELETED)."""


@dataclass(frozen=True)
class AuditRecord:
    """One audited API call. Kept apart from the objects: no resourceVersion, no watch."""

    time: datetime
    """When the request arrived (UTC)."""
    request_id: str
    """Unique per request; the response carried it as the Audit-Id header."""
    level: str
    """The audit level it was recorded at: Metadata or Request."""
    user: str
    """The principal, e.g. apikey:team-a/ci, or anonymous."""
    source: str
    """The client's address."""
    verb: str
    """create, update, patch, delete, get, list or watch."""
    kind: str
    """The plural the path names (deployments), or "" off the resource routes."""
    namespace: str
    name: str
    subresource: str
    """status, scale, or ""."""
    path: str
    code: int
    """The HTTP status answered."""
    resource_version: int | None = None
    """The object's resourceVersion after a write that succeeded."""
    body: Any = None
    """At level Request, the request body as JSON (redacted where its kind says so)."""


class Store(ABC):
    """Synchronous persistence of objects with a global resourceVersion and a change log.

    Every write is one transaction and appends one log entry per changed object. Async code
    calls the store through `asyncio.to_thread`.
    """

    @abstractmethod
    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Store a new object; set uid, resourceVersion, generation 1 and creationTimestamp.

        Raises AlreadyExistsError when the kind, namespace and name are taken.
        """

    @abstractmethod
    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The stored object; raises NotFoundError."""

    @abstractmethod
    def list(self, kind: str, namespace: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Objects of a kind sorted by (namespace, name), and the resourceVersion of that view.

        `namespace=None` lists every namespace. Both come from one consistent snapshot, so a
        watch from the returned version misses nothing.
        """

    @abstractmethod
    def update(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Replace a whole object; raise NotFoundError, or ConflictError on a stale version.

        uid, creationTimestamp, generation and deletionTimestamp stay server-managed;
        generation is bumped iff spec changed. An object being deleted whose finalizers
        became empty is removed (with its dependents) and its final state returned.
        """

    @abstractmethod
    def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        resource_version: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete an object, or mark it deleting while it has finalizers; cascade to dependents.

        Dependents are the objects whose ownerReferences name the removed uid; they are
        deleted the same way, recursively, in the same transaction.
        """

    @abstractmethod
    def events_since(
        self,
        resource_version: int,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int = 1000,
    ) -> builtins.list[WatchEvent]:
        """Logged changes after `resource_version`, oldest first, at most `limit` of them.

        Raises GoneError when `resource_version` is older than the compaction horizon.
        """

    @abstractmethod
    def current_resource_version(self) -> int:
        """The resourceVersion of the latest committed write (0 for an empty store)."""

    @abstractmethod
    def compact(self, *, keep: int) -> int:
        """Drop all but the newest `keep` log entries; return the new horizon."""

    @abstractmethod
    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Keep audit records, in one transaction."""

    @abstractmethod
    def list_audit(
        self,
        *,
        since: datetime | None = None,
        user: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int = 500,
    ) -> builtins.list[AuditRecord]:
        """The newest `limit` records that match every filter given, oldest first.

        `since` keeps records at or after it; `kind` is a plural.
        """

    @abstractmethod
    def expire_audit(self, *, before: datetime) -> int:
        """Delete the audit records older than `before`; return how many went."""

    @abstractmethod
    def close(self) -> None:
        """Release every pooled connection; call it once, at shutdown."""
