"""The Event kind: something that happened to an object, as `describe` shows it.

Repeats of the same (object, reason, message) are folded into one Event by raising its count and
moving lastTimestamp, so a crash loop is one line, not a thousand.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from inferplane.api import meta

EventType = Literal["Normal", "Warning"]

_REASON = re.compile(r"^[A-Z][A-Za-z0-9]{0,127}$")


def check_reason(reason: str) -> str:
    if not _REASON.match(reason):
        raise ValueError(f"{reason!r} is not a CamelCase reason such as BackOff or Scheduled")
    return reason


class ObjectReference(meta.Model):
    """Points at one object by kind, namespace and name (and uid, to tell recreations apart)."""

    kind: str = Field(min_length=1)
    """Kind of the object, e.g. Replica."""
    name: meta.DnsLabel
    """Name of the object."""
    namespace: meta.DnsLabel | None = None
    """Namespace of the object; unset for fleet-scoped kinds."""
    uid: str | None = None
    """UID of the object when the event was recorded."""


class EventSource(meta.Model):
    """Who reported the event."""

    component: str = ""
    """The reporting component, e.g. scheduler, deployment-controller, agent."""
    host: str = ""
    """Host or cluster the component ran on."""


class EventSpec(meta.Model):
    """What happened, to what, how often and when."""

    involvedObject: ObjectReference
    """The object the event is about."""
    type: EventType = "Normal"
    """Normal, or Warning for something that needs attention."""
    reason: Annotated[str, AfterValidator(check_reason)]
    """A CamelCase word for machines and filters, e.g. Scheduled, FailedScheduling, BackOff."""
    message: str = ""
    """A sentence for people, saying what happened."""
    count: int = Field(1, ge=1)
    """How many times it happened between firstTimestamp and lastTimestamp."""
    firstTimestamp: datetime | None = None
    """When it first happened; the server fills it on create when unset."""
    lastTimestamp: datetime | None = None
    """When it last happened; the server fills it on create when unset."""
    source: EventSource = Field(default_factory=EventSource)
    """The component that reported it."""


class Event(meta.Resource[EventSpec, meta.Status]):
    """Something that happened to an object: reason, message, count, first and last seen."""

    KIND: ClassVar[str] = "Event"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["Event"] = "Event"
    """Always Event."""
    spec: EventSpec
    """What happened and to what."""
    status: meta.Status = Field(default_factory=meta.Status)
    """Unused; present for the common object shape."""
