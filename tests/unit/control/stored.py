"""Writing test objects into a store as admission would leave them."""

from __future__ import annotations

from typing import Any

from inferplane import store as store_pkg
from inferplane.api import validation


def create(store: store_pkg.Store, doc: dict[str, Any]) -> dict[str, Any]:
    """Validate `doc` (apiVersion filled in) with its kind's schema and create it."""
    return store.create(
        validation.parse_object({"apiVersion": "inferplane.dev/v1", **doc}).to_dict()
    )
