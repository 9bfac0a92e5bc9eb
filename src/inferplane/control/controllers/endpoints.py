"""Endpoint controller: one Endpoint per Ready replica, for the gateways to route to.

An Endpoint is named after its replica and owned by it (deleting the replica deletes it). Its
spec says where the engine answers (the replica's status.url) and what is behind it
(deployment, replica, cluster and the cluster's region); status.ready is false while the
replica's cluster is not heard from, or the replica's phase is Unknown (the cluster controller
marks the replicas of a NotReady cluster so), so gateways stop routing there at once, before
any eviction; an Unknown replica keeps the Endpoint it had, and gets none if it had none.
The Endpoint goes as soon as the replica is anything else but Ready (Draining included).
`spec.engineTokenSecret` names the replica's engine token (controllers/enginetokens.py), which
gateways send to the engine.
"""

from __future__ import annotations

import copy
from typing import Any

from inferplane.api import meta, secrets, services, wellknown
from inferplane.control.runtime.controller import Key, Result, Watch
from inferplane.control.runtime.objects import Objects
from inferplane.policy import clusters as liveness


class EndpointController:
    name = "endpoints"
    kind = "Replica"

    def __init__(self, objects: Objects) -> None:
        self._objects = objects
        self._on: dict[Key, str] = {}
        """Replicas that are Ready, by the cluster they run on."""
        self._clusters: dict[str, tuple[bool, str]] = {}
        self.watches = [
            Watch("Endpoint", self._replica_of_endpoint),
            Watch("Cluster", self._replicas_on_cluster),
        ]

    async def _replica_of_endpoint(self, endpoint: dict[str, Any]) -> list[Key]:
        replica = endpoint["spec"].get("replica")
        if endpoint["spec"].get("external") or not replica:
            return []
        return [Key(endpoint["metadata"]["namespace"], replica)]

    async def _replicas_on_cluster(self, cluster: dict[str, Any]) -> list[Key]:
        """Ready replicas of a cluster whose liveness or region changed."""
        name = cluster["metadata"]["name"]
        seen = liveness.is_live(cluster), _region(cluster)
        if self._clusters.get(name) == seen:
            return []
        self._clusters[name] = seen
        return sorted(key for key, on in self._on.items() if on == name)

    async def reconcile(self, key: Key) -> Result:
        replica = await self._objects.get("Replica", key.namespace, key.name)
        endpoint = await self._objects.get("Endpoint", key.namespace, key.name)
        wanted = await self._wanted(replica, had=endpoint) if replica is not None else None
        if wanted is None:
            self._on.pop(key, None)
            if endpoint is not None and _ours(endpoint, key.name):
                await self._objects.delete(
                    "Endpoint",
                    key.namespace,
                    key.name,
                    resource_version=int(endpoint["metadata"]["resourceVersion"]),
                )
            return Result()
        self._on[key] = wanted["spec"]["cluster"]
        if endpoint is None:
            await self._objects.create(wanted)
        elif _ours(endpoint, key.name) and _differs(endpoint, wanted):
            updated = copy.deepcopy(endpoint)
            updated["metadata"]["labels"] = wanted["metadata"]["labels"]
            updated["metadata"]["ownerReferences"] = wanted["metadata"]["ownerReferences"]
            updated["spec"], updated["status"] = wanted["spec"], wanted["status"]
            await self._objects.update(updated)
        return Result()

    async def _wanted(
        self, replica: dict[str, Any], *, had: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The Endpoint the replica should have, or None when it should have none."""
        rmeta, spec, status = replica["metadata"], replica["spec"], replica.get("status") or {}
        phase = status.get("phase")
        unknown = phase == "Unknown" and had is not None and _ours(had, rmeta["name"])
        if rmeta.get("deletionTimestamp") or not (phase == "Ready" or unknown):
            return None
        if not status.get("url") or not spec.get("cluster"):
            return None
        cluster = await self._objects.get("Cluster", "", spec["cluster"])
        endpoint = services.Endpoint(
            metadata=meta.ObjectMeta(
                name=rmeta["name"],
                namespace=rmeta["namespace"],
                labels={wellknown.DEPLOYMENT_LABEL: spec["deployment"]},
                ownerReferences=[
                    meta.OwnerReference(
                        kind="Replica",
                        name=rmeta["name"],
                        uid=rmeta["uid"],
                        controller=True,
                        blockOwnerDeletion=True,
                    )
                ],
            ),
            spec=services.EndpointSpec(
                url=status["url"],
                deployment=spec["deployment"],
                replica=rmeta["name"],
                cluster=spec["cluster"],
                region=_region(cluster) if cluster is not None else "",
                # From the uid, not the replica's status: an agent writes that status, and must
                # not make gateways send it another replica's token.
                engineTokenSecret=secrets.engine_token_name(rmeta["uid"]),
            ),
            status=services.EndpointStatus(
                ready=phase == "Ready" and liveness.is_live(cluster),
            ),
        )
        return endpoint.to_dict()


def _region(cluster: dict[str, Any]) -> str:
    region: str = cluster.get("spec", {}).get("region") or ""
    return region or (cluster["metadata"].get("labels") or {}).get("region", "")


def _ours(endpoint: dict[str, Any], replica: str) -> bool:
    """An endpoint this controller manages (not an external one a user wrote)."""
    spec = endpoint["spec"]
    return not spec.get("external") and spec.get("replica") == replica


def _differs(live: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return any(
        (
            live["spec"] != wanted["spec"],
            live.get("status") != wanted["status"],
            live["metadata"].get("labels") != wanted["metadata"]["labels"],
            live["metadata"].get("ownerReferences") != wanted["metadata"]["ownerReferences"],
        )
    )
