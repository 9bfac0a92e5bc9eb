"""What apply sends over the live object, and how it tells "configured" from "unchanged"."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from inferplane.client.objects import Object

APPLY_ATTEMPTS = 3
"""How often apply re-reads and retries when someone else wrote between its read and write."""


@dataclass(frozen=True)
class ApplyResult:
    """What apply did to the object, and the object as the server now holds it."""

    action: Literal["created", "configured", "unchanged"]
    object: Object


def desired_over(obj: Object, live: Object) -> Object:
    """The user's object made ready to replace the live one.

    It carries the live resourceVersion (so a concurrent write is detected, not overwritten
    blindly) and keeps the live finalizers and owner references when the user's object does not
    mention them: controllers set those, and a manifest that never knew of them must not drop them.
    """
    desired = copy.deepcopy(obj)
    metadata = desired.setdefault("metadata", {})
    live_metadata = live.get("metadata") or {}
    metadata["resourceVersion"] = live_metadata.get("resourceVersion")
    for key in ("finalizers", "ownerReferences"):
        if key not in metadata and key in live_metadata:
            metadata[key] = live_metadata[key]
    return desired


def replaced(live: Object, result: Object) -> ApplyResult:
    """The result of replacing `live`: unchanged when nothing the user writes changed (the spec,
    hence the generation, labels and annotations)."""
    before = live.get("metadata") or {}
    after = result.get("metadata") or {}
    same = before.get("generation") == after.get("generation") and all(
        (before.get(key) or {}) == (after.get(key) or {}) for key in ("labels", "annotations")
    )
    return ApplyResult("unchanged" if same else "configured", result)
