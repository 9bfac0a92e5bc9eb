"""Paged lists, as Kubernetes pages them: `limit` items at a time, resumed by a continue token.

A token is opaque to clients: base64 (URL-safe) of the last (namespace, name) answered and the
resourceVersion of the list's first page. Each page is read from the store afresh and resumes
after that key, so an object created or deleted between pages is seen or not by where its name
sorts. Every page reports the first page's resourceVersion: a watch started from it replays
anything a later page may already show, and misses nothing an earlier page showed before it
changed (Kubernetes serves all pages at one snapshot; without one, the oldest version is the
safe one to watch from).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson


class BadToken(ValueError):
    """A continue token this server did not issue, or one damaged on the way."""


@dataclass(frozen=True)
class Continue:
    """Where the previous page ended, and the version of the list's first page."""

    namespace: str
    name: str
    version: int


@dataclass(frozen=True)
class Window:
    """What a list asks for: at most `limit` items (None: all), after `after` (None: from the
    start)."""

    limit: int | None = None
    after: Continue | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    resource_version: int
    """The version to report for the list: the first page's."""
    continue_token: str | None
    """Set when more items remain after this page."""

    def metadata(self) -> dict[str, str]:
        """The list's `metadata`, in the Kubernetes shape."""
        shown = {"resourceVersion": str(self.resource_version)}
        if self.continue_token is not None:
            shown["continue"] = self.continue_token
        return shown


def encode(mark: Continue) -> str:
    raw = orjson.dumps({"ns": mark.namespace, "name": mark.name, "rv": mark.version})
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode(token: str) -> Continue:
    """The position a token names; BadToken when it is not one this server issues."""
    try:
        fields = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise BadToken("not a continue token this server issued") from exc
    if not isinstance(fields, dict) or set(fields) != {"ns", "name", "rv"}:
        raise BadToken("not a continue token this server issued")
    namespace, name, version = fields["ns"], fields["name"], fields["rv"]
    if not (isinstance(namespace, str) and isinstance(name, str) and name):
        raise BadToken("the token names no object")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise BadToken("the token carries no resourceVersion")
    return Continue(namespace, name, version)


def page(items: list[dict[str, Any]], window: Window, *, version: int) -> Page:
    """The page of `items` (one kind, any order) that `window` asks for, read at `version`."""
    ordered = sorted(items, key=_key)  # the store's collation need not be Python's
    after = window.after
    if after is not None:
        mark = (after.namespace, after.name)
        ordered = [obj for obj in ordered if _key(obj) > mark]
    first_version = after.version if after is not None else version
    if window.limit is None or len(ordered) <= window.limit:
        return Page(ordered, first_version, None)
    shown = ordered[: window.limit]
    namespace, name = _key(shown[-1])
    token = encode(Continue(namespace, name, first_version))
    return Page(shown, first_version, token)


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]
