"""deploy/kubernetes: every object valid against Kubernetes' schemas (kubernetes-validate,
strict), the inferplane Cluster valid against its own, and the agent's RBAC no wider than
the runtime needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from inferplane.api import fleet

DEPLOY = Path(__file__).parents[4] / "deploy" / "kubernetes"
KUBERNETES = "1.37"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


DOCUMENTS = documents()


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCUMENTS if doc["kind"] == kind]


@pytest.mark.parametrize(("where", "doc"), DOCUMENTS, ids=[w for w, _ in DOCUMENTS])
def test_every_object_is_valid(where: str, doc: dict[str, Any]) -> None:
    if doc["apiVersion"] == "inferplane.dev/v1":
        cluster = fleet.Cluster.model_validate(doc)
        assert cluster.spec.runtime == "kubernetes", where
    else:
        # Raises on an invalid object; answers the schema version it checked against.
        assert kubernetes_validate.validate(doc, KUBERNETES, strict=True) == KUBERNETES, where


def test_the_control_plane_gateway_and_agent_each_have_their_objects() -> None:
    names = {(doc["kind"], doc["metadata"]["name"]) for _, doc in DOCUMENTS}
    for component in ("inferplane-control", "inferplane-gateway", "inferplane-agent"):
        assert ("Deployment", component) in names and ("ServiceAccount", component) in names
    assert ("Service", "inferplane-control") in names and ("Service", "inferplane-gateway") in names


def test_the_agents_role_is_namespaced_and_reads_nodes_only_cluster_wide() -> None:
    [role] = by_kind("Role")
    assert role["metadata"]["namespace"] == "inferplane"
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert "*" not in verbs and "escalate" not in verbs and "bind" not in verbs
    assert all("*" not in rule["resources"] for rule in role["rules"])
    [cluster_role] = by_kind("ClusterRole")
    assert cluster_role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}
    ]


def test_every_pod_runs_unprivileged() -> None:
    for deployment in by_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
