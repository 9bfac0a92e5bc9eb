"""Object metadata, conditions and the generic resource envelope every kind shares.

Field names are camelCase on purpose: they are the wire and YAML names, one source of
truth with no alias table to keep in sync.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

API_VERSION: Final = "inferplane.dev/v1"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def check_dns_label(value: str) -> str:
    """Refuse anything that is not an RFC 1123 DNS label (lowercase, digits, '-', <= 63)."""
    if len(value) > 63 or not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS label: use at most 63 lowercase letters, digits and '-',"
            " starting and ending with a letter or digit"
        )
    return value


def check_dns_subdomain(value: str) -> str:
    """Refuse anything that is not an RFC 1123 DNS subdomain (DNS labels joined by '.',
    <= 253), the names of most Kubernetes objects."""
    if len(value) > 253 or not all(DNS_LABEL.match(part) for part in value.split(".")):
        raise ValueError(
            f"{value!r} is not a DNS subdomain: use at most 253 lowercase letters, digits, '-'"
            " and '.', each part starting and ending with a letter or digit"
        )
    return value


def check_label_key(key: str) -> str:
    """A Kubernetes label key: an optional DNS-subdomain prefix and '/', then a name <= 63."""
    if len(key) > 253 or not LABEL_KEY.match(key) or len(key.rpartition("/")[2]) > 63:
        raise ValueError(f"label key {key!r} is invalid")
    return key


def check_label_value(value: str) -> str:
    """A Kubernetes label value: empty, or <= 63 letters, digits, '-', '_', '.' within."""
    if len(value) > 63 or not LABEL_VALUE.match(value):
        raise ValueError(f"label value {value!r} is invalid")
    return value


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    """Label keys and values follow Kubernetes' syntax so selectors carry over unchanged."""
    for key, value in labels.items():
        check_label_key(key)
        if len(value) > 63 or not LABEL_VALUE.match(value):
            raise ValueError(f"label value {value!r} for key {key!r} is invalid")
    return labels


DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(check_dns_subdomain)]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
Labels = Annotated[dict[str, str], AfterValidator(check_labels)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Model(BaseModel):
    """Base of every schema: unknown fields are errors, so a typo never passes silently."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=False,
        use_attribute_docstrings=True,
        field_title_generator=lambda name, _info: name,
    )


class OwnerReference(Model):
    """A reference from an object to one that owns it, for cascading deletion."""

    apiVersion: str = API_VERSION
    """API version of the owner."""
    kind: str
    """Kind of the owner, e.g. Deployment."""
    name: str
    """Name of the owner, in the same namespace as the owned object."""
    uid: str
    """UID of the owner; an owner deleted and recreated under the same name does not match."""
    controller: bool = False
    """True on the one owner that manages this object."""
    blockOwnerDeletion: bool = False
    """Reserved for foreground deletion; accepted for Kubernetes compatibility."""


class ObjectMeta(Model):
    """Metadata every object carries: its name, namespace and labels, and server-managed fields."""

    name: DnsLabel
    """Name of the object, unique per kind within its namespace: a DNS label."""
    namespace: DnsLabel | None = None
    """Namespace (tenant) of the object; absent on fleet-scoped kinds. Defaults to 'default'."""
    labels: Labels = Field(default_factory=dict)
    """Key/value pairs for selecting objects (label selectors), e.g. region=eu-west."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Free-form key/value notes for tools and people; never used for selection."""
    uid: str | None = None
    """Unique id set by the server at creation; read-only."""
    resourceVersion: str | None = None
    """Version of this object in the store, from a global, monotonically increasing counter.
    Send it back on update to be refused (409) if someone else wrote in between; read-only."""
    generation: int | None = None
    """Incremented by the server on every change of spec (not of status or metadata); read-only."""
    creationTimestamp: datetime | None = None
    """When the server created the object; read-only."""
    deletionTimestamp: datetime | None = None
    """Set when deletion was requested while finalizers remain; the object goes when they do."""
    finalizers: list[str] = Field(default_factory=list)
    """Names of cleanups that must finish (and remove their entry) before the object is deleted."""
    ownerReferences: list[OwnerReference] = Field(default_factory=list)
    """Objects this one belongs to; deleting the owner deletes it too (cascade)."""


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Model):
    """One aspect of an object's state, e.g. Ready=True, with the reason it is so."""

    type: str
    """What the condition is about, e.g. Ready, Scheduled, ModelResolved."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = ""
    """A CamelCase word for machines, e.g. ModelNotFound."""
    message: str = ""
    """A sentence for people, saying why."""
    lastTransitionTime: datetime | None = None
    """When status last changed (not when the condition was last written)."""
    observedGeneration: int | None = None
    """The metadata.generation this condition was computed from."""


class Status(Model):
    """Status common to every kind; kinds extend it with their own fields."""

    observedGeneration: int | None = None
    """The metadata.generation the controllers last acted on; equal to it means up to date."""
    conditions: list[Condition] = Field(default_factory=list)
    """The latest observations of the object's state, one entry per type."""
    phase: str | None = None
    """A one-word summary of the state, for tables (Pending, Ready, Failed ...)."""

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def set_condition(self, new: Condition, *, now: datetime | None = None) -> bool:
        """Insert or replace a condition; keep lastTransitionTime unless status changed.

        Returns True when anything changed, so callers skip no-op status writes.
        """
        old = self.condition(new.type)
        stamp = now or utcnow()
        if old is not None and old.status == new.status:
            new = new.model_copy(update={"lastTransitionTime": old.lastTransitionTime or stamp})
        else:
            new = new.model_copy(update={"lastTransitionTime": stamp})
        if old == new:
            return False
        self.conditions = [c for c in self.conditions if c.type != new.type] + [new]
        return True


SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=Status)


class Resource(Model, Generic[SpecT, StatusT]):
    """The Kubernetes-shaped envelope: apiVersion, kind, metadata, spec, status."""

    KIND: ClassVar[str] = ""
    NAMESPACED: ClassVar[bool] = True

    apiVersion: Literal["inferplane.dev/v1"] = API_VERSION
    """Always inferplane.dev/v1."""
    kind: str
    """The kind of object, e.g. Deployment."""
    metadata: ObjectMeta
    """Name, namespace, labels and the server-managed fields (uid, resourceVersion, ...)."""
    spec: SpecT
    """The desired state, written by users."""
    status: StatusT
    """The observed state, written by the control plane and agents; ignored on create/replace."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with unset optional fields left out, as users wrote it."""
        return self.model_dump(mode="json", exclude_none=True)
