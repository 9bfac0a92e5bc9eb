"""The objects every benchmark writes: Model objects in one namespace."""

from __future__ import annotations

from typing import Any

NAMESPACE = "bench"
MODELS_PATH = f"/apis/inferplane.dev/v1/namespaces/{NAMESPACE}/models"
END_MARKER = "zz-bench-end"
"""Created after the timed writes; a watcher stops once it has seen it."""


def name_of(index: int) -> str:
    return f"m-{index}"


def model(name: str) -> dict[str, Any]:
    """A small, valid Model: the body of every create."""
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"versions": [{"name": "v1", "source": "file:///m"}]},
    }


def update_patch(index: int) -> dict[str, Any]:
    """The merge patch of every update: it changes spec.description."""
    return {"spec": {"description": f"updated {index}"}}
