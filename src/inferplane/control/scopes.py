"""What each identity may do: tenant roles per namespace, and the fleet's own components.

Modelled on Kubernetes' RBAC plus its Node authorizer and NodeRestriction: a tenant's role
applies to its namespace and to the kinds it owns (controllers own Replicas, Events and the
Endpoints of replicas, and every status); an agent may touch only its own cluster, the pools
of that cluster and the replicas bound to it; a gateway reads routes and keys and writes usage.

Two checks: `authorize` judges the kind and verb before anything is read (so a refusal
reveals nothing about the object), `admit` judges the object itself once it is known, before
and after the write. A list or watch by an agent must be scoped to its cluster (`check_list`).
"""

from __future__ import annotations

import copy
from typing import Any

from inferplane.api import selectors, wellknown
from inferplane.api.registry import KindInfo
from inferplane.control import errors
from inferplane.control.auth import READ_VERBS, Principal, Verb

Object = dict[str, Any]

CONTROLLER_KINDS = frozenset({"Replica", "Event"})
"""Kinds only the control plane's controllers (and agents, for their own) write."""
GATEWAY_READS = frozenset({"Service", "Endpoint", "ApiKey", "Quota", "Secret"})
GATEWAY_STATUS = frozenset({"ApiKey", "Quota"})
DEMAND_ANNOTATIONS = frozenset(
    {wellknown.DEMAND_AT_ANNOTATION, wellknown.DEMAND_WAITING_ANNOTATION}
)
AGENT_KINDS = frozenset({"Cluster", "Pool", "Replica", "Event"})


def authorize(
    principal: Principal,
    verb: Verb,
    info: KindInfo,
    namespace: str | None,
    subresource: str | None,
) -> None:
    """Raise 403 unless `principal` may `verb` objects of `info` (in `namespace`) at all."""
    if principal.fleet_admin:
        return
    if principal.agent:
        _agent_kind(principal, verb, info, subresource)
    elif principal.gateway:
        _gateway_kind(principal, verb, info, subresource)
    elif principal.component:
        raise errors.forbidden(f"{principal} is a join key: it may only POST /join")
    else:
        _tenant_kind(principal, verb, info, namespace, subresource)


def _target(verb: str, info: KindInfo, namespace: str | None, subresource: str | None) -> str:
    what = f"{info.plural}/{subresource}" if subresource else info.plural
    where = f" in namespace {namespace!r}" if namespace else ""
    return f"{verb} {what}{where}"


def _tenant_kind(
    principal: Principal,
    verb: Verb,
    info: KindInfo,
    namespace: str | None,
    subresource: str | None,
) -> None:
    reading = verb in READ_VERBS
    target = _target(verb, info, namespace, subresource)

    def deny(why: str) -> errors.ApiProblem:
        return errors.forbidden(f"{principal} cannot {target}: {why}")

    if not info.namespaced:
        if reading:
            return
        raise deny("fleet admins only")
    if namespace is not None and namespace != principal.namespace:
        raise deny(f"its role applies to {principal.namespace!r} only")
    if info.kind == "ApiKey" and principal.role != "admin":
        raise deny("needs role admin")
    if reading:
        return
    if principal.role == "viewer":
        raise deny("role viewer is read-only")
    if info.kind == "Quota":
        # A namespace's shared limits are the platform team's to set, not the namespace's.
        raise deny("fleet admins only")
    if subresource == "status":
        raise deny("status is written by the control plane, agents and gateways")
    if info.kind in CONTROLLER_KINDS and not (info.kind == "Replica" and verb == "delete"):
        raise deny(f"{info.plural} are written by the control plane's controllers")


def _agent_kind(principal: Principal, verb: Verb, info: KindInfo, subresource: str | None) -> None:
    target = _target(verb, info, None, subresource)
    allowed = info.kind in AGENT_KINDS and subresource != "scale"
    if info.kind in ("Cluster", "Pool"):
        allowed = allowed and verb not in ("list", "watch", "delete")
    elif info.kind == "Replica":
        allowed = allowed and verb not in ("create", "delete")
    elif info.kind == "Event":
        allowed = allowed and verb == "create"
    if not allowed:
        raise errors.forbidden(
            f"{principal} cannot {target}: an agent writes only its own cluster, the pools of "
            "that cluster, the status of replicas bound to it and events about them"
        )


def _gateway_kind(
    principal: Principal, verb: Verb, info: KindInfo, subresource: str | None
) -> None:
    reading = verb in READ_VERBS
    if reading and info.kind in GATEWAY_READS:
        return
    if verb in ("update", "patch") and subresource == "status" and info.kind in GATEWAY_STATUS:
        return
    if verb == "patch" and subresource is None and info.kind == "Deployment":
        return  # the demand annotations only: admit checks the object
    raise errors.forbidden(
        f"{principal} cannot {_target(verb, info, None, subresource)}: a gateway reads "
        "Services, Endpoints, ApiKeys, Quotas and Secrets and writes only usage and demand"
    )


def check_list(
    principal: Principal, info: KindInfo, fields: selectors.FieldSelector | None
) -> None:
    """An agent lists and watches only the replicas bound to its cluster, as a kubelet
    watches pods with spec.nodeName=<its node>."""
    if not principal.agent:
        return
    wanted = selectors.FieldRequirement("spec.cluster", True, principal.cluster or "")
    if fields is None or wanted not in fields.requirements:
        raise errors.forbidden(
            f"{principal} cannot list {info.plural} of every cluster: "
            f"add fieldSelector=spec.cluster={principal.cluster}"
        )


def admit(
    principal: Principal,
    verb: Verb,
    info: KindInfo,
    before: Object | None,
    after: Object | None,
    *,
    subject: Object | None = None,
) -> None:
    """Raise 403 unless `principal` may take this object from `before` to `after` (either is
    None for a create or a read / delete). `subject` is the object an agent's Event is about."""
    if principal.fleet_admin:
        return
    if principal.agent:
        _agent_object(principal, info, before, after, subject)
    elif principal.gateway:
        _gateway_object(principal, info, before, after)
    elif info.kind == "Endpoint" and verb not in READ_VERBS:
        for obj in (before, after):
            if obj is not None and not (obj.get("spec") or {}).get("external"):
                raise errors.forbidden(
                    f"{principal} cannot {verb} endpoint {_name(obj)}: the Endpoints of "
                    "replicas are the endpoint controller's; tenants write external ones only"
                )


def _agent_object(
    principal: Principal,
    info: KindInfo,
    before: Object | None,
    after: Object | None,
    subject: Object | None,
) -> None:
    for obj in (before, after):
        if obj is None:
            continue
        if info.kind == "Event":
            if subject is None or not _bound(principal, subject):
                raise _not_its_own(principal, info, obj, "it is not about its cluster")
        elif not _bound(principal, obj):
            raise _not_its_own(principal, info, obj, "it belongs to another cluster")
    if info.kind == "Replica" and before is not None and after is not None:
        _keeps_spec(principal, info, before, after)


def _keeps_spec(principal: Principal, info: KindInfo, before: Object, after: Object) -> None:
    if _without(before, "status", "finalizers") != _without(after, "status", "finalizers"):
        why = "an agent changes only a replica's status and finalizers"
        raise _not_its_own(principal, info, after, why)


def _bound(principal: Principal, obj: Object) -> bool:
    """Whether `obj` is the agent's cluster, or a Pool or Replica of that cluster."""
    if obj.get("kind") == "Cluster":
        return bool(obj["metadata"].get("name") == principal.cluster)
    return bool((obj.get("spec") or {}).get("cluster") == principal.cluster)


def _gateway_object(
    principal: Principal, info: KindInfo, before: Object | None, after: Object | None
) -> None:
    if info.kind != "Deployment" or before is None or after is None:
        return
    if _without(before, "demand") != _without(after, "demand"):
        raise errors.forbidden(
            f"{principal} cannot patch deployment {_name(after)}: a gateway sets only the "
            "demand annotations"
        )


def _without(obj: Object, *parts: str) -> Object:
    """The object with what a scoped writer may change taken out, for comparison."""
    rest = copy.deepcopy(obj)
    meta = rest.get("metadata") or {}
    meta.pop("resourceVersion", None)
    if "status" in parts:
        rest.pop("status", None)
    if "finalizers" in parts:
        meta.pop("finalizers", None)
    if "demand" in parts:
        annotations = meta.get("annotations") or {}
        for key in DEMAND_ANNOTATIONS:
            annotations.pop(key, None)
        if not annotations:
            meta.pop("annotations", None)
    return rest


def _name(obj: Object) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def _not_its_own(principal: Principal, info: KindInfo, obj: Object, why: str) -> errors.ApiProblem:
    return errors.forbidden(f"{principal} cannot act on {info.kind} {_name(obj)}: {why}")
