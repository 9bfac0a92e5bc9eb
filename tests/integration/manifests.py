"""Small, valid manifests the integration tests build on."""

from __future__ import annotations

from typing import Any

API = "/apis/inferplane.dev/v1"


def path(plural: str, namespace: str | None = None, name: str = "", sub: str = "") -> str:
    base = f"{API}/namespaces/{namespace}/{plural}" if namespace else f"{API}/{plural}"
    return "/".join(p for p in (base, name, sub) if p)


def model(name: str, namespace: str, *versions: str) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Model",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "versions": [{"name": v, "source": f"file:///models/{name}/{v}"} for v in versions]
            or [{"name": "v1", "source": f"file:///models/{name}"}]
        },
    }


def deployment(name: str, namespace: str, *, model: str = "tiny", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"model": model, **spec},
    }


def apikey(name: str, namespace: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "ApiKey",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"role": role},
    }
