"""Quota controller: what a namespace's replicas use, against its Quotas' caps.

Counting. Every Replica object of the namespace counts (one being deleted holds its devices
until its engine has stopped, so it counts until it is gone), except one marked to move off
its cluster (evicted from a lost cluster, or drained): its replacement takes its place, so a
Quota never holds back the platform's own moves. A replica's devices are its devices per
node times its nodes, from the resources copied into it from its deployment.

The pure half, `room`, says how many more replicas of a shape every Quota of a namespace
admits; the deployment controller asks it before each creation. The controller half writes
each Quota's status.replicas and status.devices, so `get quotas` shows what is in use. The
gateway writes the same status's usage fields (tokens, cost): each writer keeps the other's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inferplane.api import apikeys, deployments, wellknown
from inferplane.control.runtime.controller import Key, Result, Watch
from inferplane.control.runtime.objects import Objects

# -- counting and room (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    replicas: int = 0
    devices: int = 0


@dataclass(frozen=True)
class Room:
    """How many of the wanted replicas the Quotas admit, and why not more."""

    allowed: int
    held_by: str | None = None
    """Which Quota and limit held the rest back, for a condition and an Event."""


def devices_of(resources: deployments.ResourcesSpec) -> int:
    """Devices one replica requests: its devices per node times its nodes."""
    return sum(request.count for request in resources.devices) * resources.nodes


def usage_of(replicas: Sequence[dict[str, Any]]) -> Usage:
    """What the replicas of one namespace count against its Quotas."""
    counted = [r for r in replicas if not _moving(r)]
    devices = sum(_devices_of_replica(r) for r in counted)
    return Usage(replicas=len(counted), devices=devices)


def _moving(replica: dict[str, Any]) -> bool:
    annotations = replica["metadata"].get("annotations") or {}
    return annotations.get(wellknown.MOVE_ANNOTATION) in (
        wellknown.MOVE_EVICT,
        wellknown.MOVE_PLANNED,
        wellknown.MOVE_PREEMPT,
    )


def _devices_of_replica(replica: dict[str, Any]) -> int:
    resources = replica["spec"].get("resources") or {}
    return devices_of(deployments.ResourcesSpec.model_validate(resources))


def room(quotas: Sequence[apikeys.Quota], usage: Usage, *, devices_each: int, wanted: int) -> Room:
    """How many more replicas of `devices_each` devices fit under every Quota, up to `wanted`."""
    allowed, held_by = wanted, None
    for quota in sorted(quotas, key=lambda q: q.metadata.name):
        for limit, fits in _fits(quota.spec, usage, devices_each):
            if fits < allowed:
                allowed = fits
                held_by = _why(quota, limit, usage, devices_each, wanted)
    return Room(allowed, held_by)


def _fits(spec: apikeys.QuotaSpec, usage: Usage, devices_each: int) -> list[tuple[str, int]]:
    """(limit, how many more replicas it admits) for each limit the Quota sets."""
    fits = []
    if spec.maxReplicas is not None:
        fits.append(("maxReplicas", max(spec.maxReplicas - usage.replicas, 0)))
    if spec.maxDevices is not None and devices_each > 0:
        fits.append(("maxDevices", max(spec.maxDevices - usage.devices, 0) // devices_each))
    return fits


def _why(quota: apikeys.Quota, limit: str, usage: Usage, devices_each: int, wanted: int) -> str:
    name = f"quota {quota.metadata.namespace}/{quota.metadata.name}"
    if limit == "maxReplicas":
        cap, used = quota.spec.maxReplicas, f"{usage.replicas} replicas"
    else:
        cap, used = quota.spec.maxDevices, f"{usage.devices} devices"
    each = f", {devices_each} per replica" if limit == "maxDevices" else ""
    return f"{name}: {limit} is {cap} and the namespace has {used}{each}; {wanted} more wanted"


# -- the controller -----------------------------------------------------------------------------


class QuotaController:
    name = "quotas"
    kind = "Quota"

    def __init__(self, objects: Objects) -> None:
        self._objects = objects
        self._quotas: dict[str, set[str]] = {}
        """Quota names by namespace, fed by Quota events and by every reconcile."""
        self._counted: dict[Key, Usage] = {}
        """What each replica counts, so a status report does not wake a Quota."""
        self.watches = [
            Watch("Quota", self._index),
            Watch("Replica", self._quotas_of_replica),
        ]

    async def _index(self, quota: dict[str, Any]) -> list[Key]:
        meta = quota["metadata"]
        names = self._quotas.setdefault(meta["namespace"], set())
        if meta.get("deletionTimestamp"):
            names.discard(meta["name"])
        else:
            names.add(meta["name"])
        return []  # its own key is queued by the runner already

    async def _quotas_of_replica(self, replica: dict[str, Any]) -> list[Key]:
        meta = replica["metadata"]
        key = Key(meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._counted.pop(key, None)  # gone from the store
        else:
            counts = usage_of([replica])
            if self._counted.get(key) == counts:
                return []
            self._counted[key] = counts
        return [Key(key.namespace, name) for name in sorted(self._quotas.get(key.namespace, ()))]

    async def reconcile(self, key: Key) -> Result:
        obj = await self._objects.get("Quota", key.namespace, key.name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self._quotas.get(key.namespace, set()).discard(key.name)
            return Result()
        await self._index(obj)
        usage = usage_of(await self._objects.list("Replica", key.namespace))
        quota = apikeys.Quota.model_validate(obj)
        status = quota.status.model_copy(
            update={
                "replicas": usage.replicas,
                "devices": usage.devices,
                "observedGeneration": quota.metadata.generation,
            }
        )
        await self._objects.write_status(obj, status.model_dump(mode="json", exclude_none=True))
        return Result()
