"""Where a call goes: the path of a kind, object or subresource, its namespace, and the query
parameters that several calls share."""

from __future__ import annotations

from urllib.parse import quote

from inferplane.api import registry
from inferplane.client import errors
from inferplane.client.objects import Object

API_PREFIX = "/apis/inferplane.dev/v1"


def namespace_for(info: registry.KindInfo, given: str | None, default: str) -> str | None:
    """The namespace an addressed call uses: none for fleet kinds, else given or default."""
    return (given or default) if info.namespaced else None


def address(obj: Object, default: str) -> tuple[registry.KindInfo, str | None, str]:
    """The kind, namespace and name an object is addressed by; BadObject without kind or name."""
    kind = obj.get("kind")
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not kind or not name:
        raise errors.BadObject("an object needs a kind and a metadata.name")
    info = registry.lookup(str(kind))
    return info, namespace_for(info, metadata.get("namespace"), default), str(name)


def path(
    info: registry.KindInfo,
    namespace: str | None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The path of a collection (in `namespace`, or every one), an object or a subresource."""
    parts = [API_PREFIX]
    if info.namespaced and namespace:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(info.plural)
    if name:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def with_namespace(obj: Object, namespace: str | None) -> Object:
    """The object with its namespace filled in, so the body agrees with the path."""
    metadata = obj.get("metadata") or {}
    if namespace is None or metadata.get("namespace") == namespace:
        return obj
    return {**obj, "metadata": {**metadata, "namespace": namespace}}


def selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def dry(dry_run: bool) -> dict[str, str]:
    return {"dryRun": "All"} if dry_run else {}
