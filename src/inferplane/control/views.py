"""What an object looks like to the one who reads it.

Every response, list item and watch line passes through a View: a Secret never shows its
values, and a fleet-scoped Pool shows a tenant only its own namespace's replicas among the
per-node allocations (the capacity figures stay: they are the fleet's, not a tenant's).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from inferplane.control import auth, secrets

Object = dict[str, Any]


@dataclass(frozen=True)
class View:
    namespace: str | None
    """The namespace whose replicas a Pool shows; None shows every one (fleet admins)."""

    @property
    def key(self) -> str:
        """Equal for views that show every object alike: watch lines are cached per key."""
        return "*" if self.namespace is None else self.namespace

    def show(self, obj: Object) -> Object:
        kind = obj.get("kind")
        if kind == "Secret":
            return secrets.present(obj)
        if kind == "Pool" and self.namespace is not None:
            return _pool_for(obj, self.namespace)
        return obj


def of(principal: auth.Principal) -> View:
    return View(None if principal.fleet_admin else principal.namespace)


FLEET = View(None)


def _pool_for(obj: Object, namespace: str) -> Object:
    nodes = (obj.get("status") or {}).get("nodes")
    if not nodes:
        return obj
    prefix = namespace + "/"
    shown = copy.deepcopy(obj)
    for node in shown["status"]["nodes"]:
        node["replicas"] = [r for r in node.get("replicas", []) if r.startswith(prefix)]
    return shown
