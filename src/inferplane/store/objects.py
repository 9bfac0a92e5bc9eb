"""Server-managed metadata: the pure bookkeeping every write applies to an object dict.

No I/O and no clock of its own: the store passes the time and the new uid in. Every
function returns a new dict and leaves its arguments alone.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

Object = dict[str, Any]
MANAGED = ("uid", "creationTimestamp", "deletionTimestamp")
"""Metadata fields the store keeps from the stored object on replace; callers cannot set them."""


class ObjectKey(NamedTuple):
    """Where an object lives: namespace is '' for fleet-scoped kinds."""

    kind: str
    namespace: str
    name: str


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp format: UTC, second precision, a 'Z' suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, so equal values give equal text.

    Integers must fit in 64 bits, as in Kubernetes: ValueError otherwise.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"object cannot be stored as JSON: {exc}") from exc


def loads(text: str) -> Object:
    value: Object = orjson.loads(text)
    return value


def key_of(obj: Object) -> ObjectKey:
    """The object's kind, namespace and name; ValueError naming the field when one is missing."""
    kind = obj.get("kind")
    meta = obj.get("metadata")
    if not isinstance(kind, str) or not kind:
        raise ValueError("object has no kind: set 'kind' to a non-empty string")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ValueError(f"{kind} has no name: set 'metadata.name' to a non-empty string")
    namespace = meta.get("namespace") or ""
    if not isinstance(namespace, str):
        raise ValueError(f"{kind} {meta['name']!r}: 'metadata.namespace' must be a string")
    return ObjectKey(kind, namespace, meta["name"])


def resource_version(obj: Object) -> int | None:
    """The caller's metadata.resourceVersion as an int, or None when unset."""
    value = obj["metadata"].get("resourceVersion")
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"metadata.resourceVersion {value!r} is not an integer") from None


def created(obj: Object, *, uid: str, now: datetime) -> Object:
    """A new object as first stored: uid, generation 1, creationTimestamp; not deleting."""
    new = copy.deepcopy(obj)
    meta = new["metadata"]
    meta.pop("resourceVersion", None)
    meta.pop("deletionTimestamp", None)
    meta.update(uid=uid, generation=1, creationTimestamp=rfc3339(now))
    return new


def replaced(obj: Object, *, old: Object) -> Object:
    """`obj` replacing `old`: managed fields kept, generation bumped iff spec changed."""
    new = copy.deepcopy(obj)
    meta, old_meta = new["metadata"], old["metadata"]
    for field in MANAGED:
        meta.pop(field, None)
        if field in old_meta:
            meta[field] = old_meta[field]
    bump = dumps(new.get("spec")) != dumps(old.get("spec"))
    meta["generation"] = old_meta.get("generation", 1) + int(bump)
    meta.pop("resourceVersion", None)
    return new


def marked_deleting(obj: Object, *, now: datetime) -> Object:
    new = copy.deepcopy(obj)
    new["metadata"]["deletionTimestamp"] = rfc3339(now)
    return new


def versioned(obj: Object, resource_version: int) -> Object:
    new = copy.deepcopy(obj)
    new["metadata"]["resourceVersion"] = str(resource_version)
    return new


def same_content(a: Object, b: Object) -> bool:
    """Equal but for resourceVersion: a write of `a` over `b` would change nothing."""
    return dumps(versioned(a, 0)) == dumps(versioned(b, 0))


def finalizers(obj: Object) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])


def is_deleting(obj: Object) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def is_finished(obj: Object) -> bool:
    """Deletion was requested and no finalizer holds the object any more: remove it."""
    return is_deleting(obj) and not finalizers(obj)


def owner_uids(obj: Object) -> set[str]:
    refs = obj["metadata"].get("ownerReferences") or []
    return {ref["uid"] for ref in refs if isinstance(ref, dict) and ref.get("uid")}
