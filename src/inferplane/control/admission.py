"""Admission: check the envelope, validate against the kind's schema, fill defaults, mutate.

Every write passes through here before the store sees it, so what is stored is always a
valid, fully defaulted object and `get -o yaml` shows what each omitted field became.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from inferplane.api import apikeys, meta, validation
from inferplane.api import errors as api_errors
from inferplane.api.registry import KindInfo
from inferplane.control import auth, errors
from inferplane.policy import devices

SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp")

# A mutator fills server-made fields at create time and returns what only the create response
# may show (an ApiKey's plain token is returned once and never stored).
Mutator = Callable[[dict[str, Any]], dict[str, Any]]


def _apikey_token(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return {}  # not an object: validation answers 422 naming spec
    if spec.get("tokenHash"):
        return {}
    token = auth.new_token()
    spec["tokenHash"] = auth.hash_token(token)
    spec["tokenPrefix"] = token[:12]
    return {"token": token}


MUTATORS: dict[str, Mutator] = {"ApiKey": _apikey_token}

# A check sees the parsed, defaulted object and names what the schema alone cannot judge.
Check = Callable[[meta.Resource[Any, Any]], list[errors.Cause]]


def _device_selectors(obj: meta.Resource[Any, Any]) -> list[errors.Cause]:
    """Every CEL device selector must compile, so a typo is a 422 now, not a replica that
    never schedules later."""
    return devices.selector_causes(obj.spec.resources.devices)


def _apikey_scope(obj: meta.Resource[Any, Any]) -> list[errors.Cause]:
    """The fleet's component roles live in inferplane-system only, and an agent key names its
    cluster: a tenant namespace cannot mint an identity that speaks for a plane."""
    role, cluster = obj.spec.role, obj.spec.cluster
    if role in apikeys.SYSTEM_ROLES and obj.metadata.namespace != auth.SYSTEM_NAMESPACE:
        return [errors.Cause("spec.role", f"role {role} is only valid in {auth.SYSTEM_NAMESPACE}")]
    if role == "agent" and not cluster:
        return [errors.Cause("spec.cluster", "an agent key must name the cluster it speaks for")]
    if cluster and role not in ("agent", "join", "gateway"):
        why = f"only agent, join and gateway keys name a cluster, not {role}"
        return [errors.Cause("spec.cluster", why)]
    return []


CHECKS: dict[str, Check] = {"Deployment": _device_selectors, "ApiKey": _apikey_scope}


def prepare_create(
    info: KindInfo, namespace: str | None, body: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The object to store and the status fields to add to the response only."""
    obj = _envelope(info, namespace, None, body)
    for key in SERVER_FIELDS:
        obj["metadata"].pop(key, None)
    obj.pop("status", None)
    response_status = MUTATORS[info.kind](obj) if info.kind in MUTATORS else {}
    return validate(info, obj), response_status


def prepare_replace(
    info: KindInfo, namespace: str | None, name: str, body: Any, live: dict[str, Any]
) -> dict[str, Any]:
    """A whole-object replace: spec and metadata from the body, status kept from the live object."""
    obj = _envelope(info, namespace, name, body)
    _keep_server_fields(info, obj, live)
    if info.kind == "Deployment":
        _keep_autoscaled_replicas(obj, live)
    obj["status"] = copy.deepcopy(live.get("status", {}))
    return validate(info, obj)


def autoscaled(obj: dict[str, Any]) -> bool:
    """Whether a stored (or sent) Deployment's spec.autoscaling is set and enabled."""
    spec = obj.get("spec")
    autoscaling = spec.get("autoscaling") if isinstance(spec, dict) else None
    return isinstance(autoscaling, dict) and autoscaling.get("enabled", True) is not False


def _keep_autoscaled_replicas(obj: dict[str, Any], live: dict[str, Any]) -> None:
    """While autoscaling stays enabled, spec.replicas is the autoscaler's: re-applying a
    manifest that still says `replicas: 1` must not undo its last decision (as Kubernetes
    users learn to drop replicas from manifests an HPA scales)."""
    if autoscaled(live) and autoscaled(obj) and isinstance(obj.get("spec"), dict):
        replicas = (live.get("spec") or {}).get("replicas")
        if replicas is not None:
            obj["spec"]["replicas"] = replicas


def prepare_status(
    info: KindInfo, namespace: str | None, name: str, body: Any, live: dict[str, Any]
) -> dict[str, Any]:
    """A status write: only `status` comes from the body."""
    sent = _envelope(info, namespace, name, body)
    obj = copy.deepcopy(live)
    obj["status"] = sent.get("status", {})
    if "resourceVersion" in sent["metadata"]:
        obj["metadata"]["resourceVersion"] = _sent_version(info, name, sent["metadata"])
    return validate(info, obj)


def validate(info: KindInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """Validate against the schema; return the defaulted object, server fields intact."""
    server_meta = {k: obj["metadata"][k] for k in SERVER_FIELDS if k in obj["metadata"]}
    name = str(obj["metadata"].get("name", ""))
    try:
        parsed = validation.parse_object(obj)
    except api_errors.ValidationFailure as exc:
        raise errors.invalid(info.kind, name, list(exc.causes)) from exc
    problems = CHECKS[info.kind](parsed) if info.kind in CHECKS else []
    if problems:
        raise errors.invalid(info.kind, name, problems)
    result = parsed.to_dict()
    result["metadata"].update(server_meta)
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _envelope(info: KindInfo, namespace: str | None, name: str | None, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    obj = copy.deepcopy(body)
    _check_type_fields(info, obj)
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise errors.invalid(info.kind, name or "", [errors.Cause("metadata", "Field required")])
    _check_name(info, metadata, name)
    _check_namespace(info, metadata, namespace)
    return obj


def _check_type_fields(info: KindInfo, obj: dict[str, Any]) -> None:
    obj.setdefault("apiVersion", meta.API_VERSION)
    obj.setdefault("kind", info.kind)
    if obj["apiVersion"] != meta.API_VERSION:
        raise errors.bad_request(
            f"apiVersion {obj['apiVersion']!r} is not served here; use {meta.API_VERSION!r}",
            causes=[errors.Cause("apiVersion", f"expected {meta.API_VERSION}")],
        )
    if obj["kind"] != info.kind:
        raise errors.bad_request(
            f"kind {obj['kind']!r} does not match the path, which is for {info.kind}",
            causes=[errors.Cause("kind", f"expected {info.kind}")],
        )


def _check_name(info: KindInfo, metadata: dict[str, Any], name: str | None) -> None:
    given = metadata.get("name")
    if name is None:
        if not given:
            cause = errors.Cause("metadata.name", "Field required", "FieldValueRequired")
            raise errors.invalid(info.kind, "", [cause])
    elif given is None:
        metadata["name"] = name
    elif given != name:
        raise errors.bad_request(
            f"metadata.name {given!r} does not match the name in the path, {name!r}",
            causes=[errors.Cause("metadata.name", f"expected {name}")],
        )


def _check_namespace(info: KindInfo, metadata: dict[str, Any], namespace: str | None) -> None:
    given = metadata.get("namespace")
    if not info.namespaced:
        if given:
            cause = errors.Cause("metadata.namespace", f"{info.kind} is fleet-scoped")
            raise errors.invalid(info.kind, str(metadata.get("name", "")), [cause])
        metadata.pop("namespace", None)
        return
    if given is None:
        metadata["namespace"] = namespace
    elif given != namespace:
        raise errors.bad_request(
            f"metadata.namespace {given!r} does not match the namespace in the path, {namespace!r}",
            causes=[errors.Cause("metadata.namespace", f"expected {namespace}")],
        )


def _sent_version(info: KindInfo, name: str, metadata: dict[str, Any]) -> str | None:
    """The resourceVersion a writer sent, which must be what the server hands out: digits."""
    value = metadata.get("resourceVersion")
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    cause = errors.Cause(
        "metadata.resourceVersion", "must be a resourceVersion read from the server"
    )
    raise errors.invalid(info.kind, name, [cause])


def _keep_server_fields(info: KindInfo, obj: dict[str, Any], live: dict[str, Any]) -> None:
    sent_version = _sent_version(info, live["metadata"]["name"], obj["metadata"])
    for key in SERVER_FIELDS:
        obj["metadata"].pop(key, None)
        if key in live["metadata"]:
            obj["metadata"][key] = live["metadata"][key]
    if sent_version is not None:
        # A stale version in the body must reach the store, which refuses it with 409.
        obj["metadata"]["resourceVersion"] = sent_version
    else:
        obj["metadata"].pop("resourceVersion", None)
