"""Deployment controller: resolves the deployment's model and version and reports it.

This issue's slice of the controller: it checks `spec.model` / `spec.modelVersion` against the
Model objects of the namespace, writes the ModelResolved condition and observedGeneration, and
records an Event when resolution changes. Creating replicas lands with the workload plane.
"""

from __future__ import annotations

import asyncio
from typing import Any

from inferplane.api.deployments import Deployment
from inferplane.api.meta import Condition
from inferplane.api.models import Model
from inferplane.control.runtime.controller import Key, Result, Watch
from inferplane.control.runtime.events import EventRecorder, EventType
from inferplane.control.runtime.objects import Objects


class DeploymentController:
    name = "deployments"
    kind = "Deployment"

    def __init__(self, objects: Objects, recorder: EventRecorder) -> None:
        self._objects = objects
        self._recorder = recorder
        # Which deployments name which model, so a Model change finds its deployments without
        # a list. Fed by Deployment events (in watch order, so before any later Model event)
        # and by every reconcile.
        self._model_of: dict[Key, Key] = {}
        self.watches = [
            Watch("Deployment", self._index),
            Watch("Model", self._deployments_of_model),
        ]

    async def _index(self, deployment: dict[str, Any]) -> list[Key]:
        meta = deployment["metadata"]
        key = Key(meta["namespace"], meta["name"])
        self._model_of[key] = Key(meta["namespace"], deployment["spec"]["model"])
        return []  # its own key is queued by the runner already

    async def _deployments_of_model(self, model: dict[str, Any]) -> list[Key]:
        meta = model["metadata"]
        wanted = Key(meta["namespace"], meta["name"])
        return [key for key, named in self._model_of.items() if named == wanted]

    async def reconcile(self, key: Key) -> Result:
        obj = await self._objects.get("Deployment", key.namespace, key.name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self._model_of.pop(key, None)
            return Result()
        await self._index(obj)
        deployment = Deployment.model_validate(obj)
        condition = await self._resolve(deployment)
        status = deployment.status.model_copy(deep=True)
        changed = status.set_condition(condition)
        status.observedGeneration = deployment.metadata.generation
        if status.phase is None:
            status.phase = "Pending"
        await self._objects.write_status(obj, status.model_dump(mode="json", exclude_none=True))
        if changed:
            kind: EventType = "Normal" if condition.status == "True" else "Warning"
            await asyncio.to_thread(
                self._recorder.record, obj, kind, condition.reason, condition.message
            )
        return Result()

    async def _resolve(self, deployment: Deployment) -> Condition:
        spec = deployment.spec
        namespace = deployment.metadata.namespace or "default"

        def condition(ok: bool, reason: str, message: str) -> Condition:
            return Condition(
                type="ModelResolved",
                status="True" if ok else "False",
                reason=reason,
                message=message,
                observedGeneration=deployment.metadata.generation,
            )

        obj = await self._objects.get("Model", namespace, spec.model)
        if obj is None:
            message = f'model "{spec.model}" does not exist in namespace "{namespace}"'
            return condition(False, "ModelNotFound", message)
        model = Model.model_validate(obj)
        version = model.spec.resolve_version(spec.modelVersion)
        if version is None:
            listed = ", ".join(f"{v.name} ({v.stage})" for v in model.spec.versions)
            wanted = spec.modelVersion or "a staging or production version"
            message = f'model "{spec.model}" has no deployable {wanted}; it has {listed}'
            return condition(False, "ModelVersionNotFound", message)
        message = f'using model "{spec.model}" version "{version.name}" from {version.source}'
        return condition(True, "ModelResolved", message)
