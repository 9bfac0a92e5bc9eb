"""Carrying out a preemption: mark the victims to move, and say so on both deployments.

A victim is not deleted here. It is annotated `inferplane.dev/move: preempt`, and its
deployment controller starts a replacement first and deletes the victim once the replacement
is Ready, or at once when the replacement cannot be placed or fails: make-before-break where
the fleet has room elsewhere, break-before-make where it has none. Its deletion then drains
it like any other (out of the routing table first, in-flight requests finished within the
drain grace, then stopped), and its devices go to the replica that preempted it.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime
from typing import Any

from inferplane import logs
from inferplane.api import replicas, wellknown
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.objects import Objects
from inferplane.policy.placement.preemption import Holder, Preempt
from inferplane.store import base as store_base

log = logging.getLogger(__name__)


async def evict(
    objects: Objects,
    recorder: EventRecorder,
    preemptor: replicas.Replica,
    answer: Preempt,
    *,
    now: datetime,
) -> None:
    """Mark each victim to move, with an Event on its deployment and on the preemptor's."""
    namespace = preemptor.metadata.namespace or "default"
    by = f"{namespace}/{preemptor.metadata.name}"
    where = f"{answer.binding.cluster}/{answer.binding.pool}"
    owner = await objects.get("Deployment", namespace, preemptor.spec.deployment)
    for victim in answer.victims:
        victim_owner = await _deployment(objects, victim.deployment)
        if victim_owner is None:
            # Nothing would replace it, or delete it once moved: it goes now.
            await objects.delete("Replica", *victim.replica.split("/", 1))
        elif await _mark(objects, victim, by) is None:
            continue
        logs.event(log, "preempting", object=victim.replica, by=by, pool=where)
        text = (
            f"replica {victim.replica} (priority {victim.priority}) preempted on {where} by "
            f"{by} of deployment {preemptor.spec.deployment} (priority {preemptor.spec.priority})"
        )
        if victim_owner is not None:
            await recorder.emit(victim_owner, "Warning", "Preempted", text, now=now)
        if owner is not None:
            await recorder.emit(owner, "Normal", "Preempting", text, now=now)


async def _mark(objects: Objects, victim: Holder, by: str) -> dict[str, Any] | None:
    namespace, name = victim.replica.split("/", 1)
    stored = await objects.get("Replica", namespace, name)
    if stored is None or stored["metadata"].get("deletionTimestamp"):
        return None
    annotations = stored["metadata"].get("annotations") or {}
    if annotations.get(wellknown.MOVE_ANNOTATION):
        return None  # already leaving: it frees its devices without us
    updated = copy.deepcopy(stored)
    updated["metadata"]["annotations"] = {
        **annotations,
        wellknown.MOVE_ANNOTATION: wellknown.MOVE_PREEMPT,
        wellknown.PREEMPTED_BY_ANNOTATION: by,
    }
    try:
        return await objects.update(updated)
    except (store_base.ConflictError, store_base.NotFoundError):
        return None  # changed meanwhile: the next attempt decides on a fresh view


async def _deployment(objects: Objects, qualified: str) -> dict[str, Any] | None:
    namespace, name = qualified.split("/", 1)
    return await objects.get("Deployment", namespace, name)
