"""The objects the bench applies: the demo Model (its built folder as a file:// source), and
per run a Deployment and a Service of the same name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.autoscaling.fleet import CPU_PER_REPLICA, MEMORY_PER_REPLICA_GI
from inferplane.api.meta import API_VERSION

NAMESPACE = "default"
MODEL = "demo"


def model(folder: Path) -> dict[str, Any]:
    """The demo Model, pointing at the folder `updemo.build_demo` made: the engines load it
    from there, whatever data dir their agent has."""
    version = {"name": "v1", "source": f"file://{folder.resolve()}", "stage": "production"}
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "metadata": {"name": MODEL, "namespace": NAMESPACE},
        "spec": {"versions": [version]},
    }


def deployment(name: str, replicas: int, autoscaling: dict[str, Any] | None) -> dict[str, Any]:
    """The demo model on the reference engine (as `inferplane up` runs it), each replica one
    core and 1 GiB, spread over the regions; autoscaled with `autoscaling`, else fixed."""
    spec: dict[str, Any] = {
        "model": MODEL,
        "replicas": replicas,
        "engine": {
            "recipe": "reference",
            "args": ["--served-model-name", name, "--kv-cache-memory", "64MiB"],
        },
        "resources": {"cpu": str(CPU_PER_REPLICA), "memory": f"{MEMORY_PER_REPLICA_GI}Gi"},
        "placement": {"strategy": "spread", "spreadLabel": "region"},
    }
    if autoscaling is not None:
        spec["autoscaling"] = autoscaling
    return {
        "apiVersion": API_VERSION,
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"modelName": name, "routes": [{"deployment": name}]},
    }
