"""A replica as the scheduler binds it to cluster eu-1 (two nodes' devices named), shared by
the agent's tests."""

from __future__ import annotations

from typing import Any


def bound_spec(**fields: Any) -> dict[str, Any]:
    """The spec of a replica bound to eu-1's h100 pool, node 1; `fields` override."""
    return {
        "deployment": "chat",
        "model": {"name": "m", "version": "v1", "source": "file://demo"},
        "cluster": "eu-1",
        "pool": "eu-1-h100",
        "nodes": [1],
        "devices": [
            {"request": "gpu", "group": "gpu", "node": 1, "indexes": [0, 2]},
            {"request": "gpu", "group": "gpu", "node": 0, "indexes": [5]},
        ],
        **fields,
    }
