"""Minimal manifests of every kind, shared by the api tests."""

from __future__ import annotations

import copy
from typing import Any

MINIMAL: dict[str, dict[str, Any]] = {
    "Cluster": {},
    "Pool": {"cluster": "eu-1"},
    "ModelCache": {"model": "llama"},
    "Model": {"versions": [{"name": "v1", "source": "hf://meta-llama/Llama-3.1-8B"}]},
    "Deployment": {"model": "llama"},
    "Replica": {
        "deployment": "chat",
        "model": {"name": "llama", "version": "v1", "source": "hf://meta-llama/Llama-3.1-8B"},
    },
    "Service": {"routes": [{"deployment": "chat"}]},
    "Endpoint": {"url": "http://127.0.0.1:8001", "replica": "chat-0"},
    "ApiKey": {},
    "Quota": {},
    "Event": {"involvedObject": {"kind": "Replica", "name": "chat-0"}, "reason": "Started"},
    "Secret": {"data": {"token": "s3cret"}},
}
"""The smallest valid spec of each kind."""


def manifest(kind: str, **spec_overrides: Any) -> dict[str, Any]:
    """A minimal manifest of `kind`, its spec updated with `spec_overrides`."""
    spec = copy.deepcopy(MINIMAL[kind]) | spec_overrides
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": kind,
        "metadata": {"name": "sample"},
        "spec": spec,
    }
