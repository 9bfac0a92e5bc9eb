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


def cluster(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"region": "eu", **spec},
    }


def pool(name: str, cluster: str) -> dict[str, Any]:
    """A one-node CPU pool of `cluster`."""
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Pool",
        "metadata": {"name": name},
        "spec": {"cluster": cluster, "nodeCount": 1, "cpu": "4"},
    }


def model_cache(name: str, model: str, model_namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "ModelCache",
        "metadata": {"name": name},
        "spec": {"model": model, "modelNamespace": model_namespace},
    }


def replica(name: str, namespace: str, *, cluster: str, pool: str) -> dict[str, Any]:
    """A Replica of deployment chat (model tiny) bound to node 0 of `pool` on `cluster`."""
    spec = {
        "deployment": "chat",
        "model": {"name": "tiny", "version": "v1", "source": "file:///models/tiny"},
        "engine": {"recipe": "reference"},
        "cluster": cluster,
        "pool": pool,
        "nodes": [0],
    }
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Replica",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def endpoint(name: str, namespace: str, url: str, **spec: Any) -> dict[str, Any]:
    """An Endpoint at `url`: pass replica=NAME for a replica's, external=True for an upstream."""
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Endpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, **spec},
    }


def service(name: str, namespace: str, *, endpoint: str) -> dict[str, Any]:
    """A Service that routes model name `name` to one Endpoint."""
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"routes": [{"endpoint": endpoint}]},
    }


def secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"data": data},
    }


def quota(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Quota",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def event(name: str, namespace: str, *, about: dict[str, str], reason: str) -> dict[str, Any]:
    """An Event about the object `about` names (its kind, name and namespace)."""
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"involvedObject": about, "reason": reason, "message": reason},
    }
