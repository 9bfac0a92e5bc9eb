"""Secrets through the API: sealed before the store sees them, shown without their values.

Admission hands a validated Secret here: its `spec.data` values are encrypted into
`spec.encryptedData` with the control plane's SecretBox, `status.keys` records their sizes,
and `data` is dropped, so the store (and its change log, and every backup of it) holds only
ciphertext. Every response passes through `present`, which removes the ciphertext too.
"""

from __future__ import annotations

import copy
from typing import Any

from inferplane.api import secrets as api_secrets
from inferplane.control import errors
from inferplane.control.secretbox import SecretBox, SecretBoxError
from inferplane.control.settings import ControlSettings

Object = dict[str, Any]


def _where(obj: Object, key: str) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}/{key}"


def refuse_client_fields(body: Any) -> None:
    """Ciphertext and control-plane-made types are never accepted from a client."""
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        return
    name = _name_in(body)
    if spec.get("encryptedData") is not None:
        cause = errors.Cause("spec.encryptedData", "is server-managed: write spec.data instead")
        raise errors.invalid("Secret", name, [cause])
    if spec.get("type") == api_secrets.ENGINE_TOKEN:
        cause = errors.Cause("spec.type", "engine tokens are made by the control plane")
        raise errors.invalid("Secret", name, [cause])


def _name_in(body: dict[str, Any]) -> str:
    """The name a client's body gives, for an error message; its metadata may be anything
    (found by fuzzing: `"metadata": 1.0` was a 500)."""
    meta = body.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, dict) else ""


def refuse_endpoint_fields(body: Any) -> None:
    """An Endpoint's engine token is named by the control plane alone: a client naming one
    could have gateways send a replica's token wherever the Endpoint's URL points."""
    spec = body.get("spec") if isinstance(body, dict) else None
    if isinstance(spec, dict) and spec.get("engineTokenSecret") is not None:
        name = _name_in(body)
        message = "is set by the control plane on a replica's Endpoint: leave it out"
        raise errors.invalid("Endpoint", name, [errors.Cause("spec.engineTokenSecret", message)])


def seal(box: SecretBox, obj: Object, kept: dict[str, str] | None = None) -> Object:
    """`obj` (validated) with its values sealed; `kept` are sealed values of the live object
    that the write leaves in place."""
    sealed = copy.deepcopy(obj)
    spec = sealed.setdefault("spec", {})
    data = spec.pop("data", None) or {}
    encrypted = dict(kept or {})
    for key, value in data.items():
        encrypted[key] = box.seal(value, where=_where(sealed, key))
    spec["encryptedData"] = encrypted
    sizes = {k: len(v.encode()) for k, v in data.items()}
    old_sizes = (sealed.get("status") or {}).get("keys") or {}
    sizes = {k: sizes.get(k, old_sizes.get(k, 0)) for k in sorted(encrypted)}
    sealed["status"] = {**(sealed.get("status") or {}), "keys": sizes}
    return sealed


def kept_on_replace(live: Object, body: Any) -> dict[str, str]:
    """A replace without `data` keeps every value; with `data` it sets exactly those keys."""
    spec = body.get("spec") if isinstance(body, dict) else None
    if isinstance(spec, dict) and spec.get("data") is not None:
        return {}
    return dict((live.get("spec") or {}).get("encryptedData") or {})


def kept_on_patch(live: Object, patch: Any) -> dict[str, str]:
    """A merge patch keeps every value it does not name; `data: {k: null}` deletes k and
    `data: null` deletes them all."""
    old = dict((live.get("spec") or {}).get("encryptedData") or {})
    spec = patch.get("spec") if isinstance(patch, dict) else None
    if not isinstance(spec, dict) or "data" not in spec:
        return old
    data = spec["data"]
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in old.items() if k not in data}


def present(obj: Object) -> Object:
    """What a reader may see of a Secret: everything but the values."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or ("encryptedData" not in spec and "data" not in spec):
        return obj
    shown = {**obj, "spec": {k: v for k, v in spec.items() if k not in ("data", "encryptedData")}}
    return shown


def reveal(box: SecretBox, obj: Object) -> dict[str, str]:
    """The plain values, for the identities `reveal` is scoped to."""
    encrypted = (obj.get("spec") or {}).get("encryptedData") or {}
    try:
        return {key: box.open(text, where=_where(obj, key)) for key, text in encrypted.items()}
    except SecretBoxError as exc:
        name = obj["metadata"]["name"]
        message = f'secret "{name}" does not open: {exc}'
        raise errors.ApiProblem(500, "InternalError", message) from exc


def needs_reseal(box: SecretBox, obj: Object) -> bool:
    encrypted = (obj.get("spec") or {}).get("encryptedData") or {}
    return any(not box.sealed_with_primary(text) for text in encrypted.values())


def reseal(box: SecretBox, obj: Object) -> Object:
    """The Secret sealed again with the key file's first key (after a rotation)."""
    values = reveal(box, obj)
    sealed = copy.deepcopy(obj)
    sealed["spec"]["encryptedData"] = {
        key: box.seal(value, where=_where(obj, key)) for key, value in values.items()
    }
    return sealed


def check_reference(obj: Object, settings: ControlSettings) -> None:
    """An Endpoint may name a Secret of its own namespace; an environment variable or file of
    the gateway only when the operator allowlisted it, since the gateway sends the value to the
    Endpoint's URL, which a tenant chooses."""
    ref = (obj.get("spec") or {}).get("apiKeySecretRef") or {}
    name = obj["metadata"]["name"]
    field = "spec.apiKeySecretRef"
    if ref.get("name") is not None and api_secrets.replica_uid_of(ref["name"]) is not None:
        message = f"{ref['name']!r} is a replica's engine token: only agents and gateways hold one"
        raise errors.invalid("Endpoint", name, [errors.Cause(f"{field}.name", message)])
    if ref.get("env") is not None and ref["env"] not in settings.allow_secret_env:
        message = f"environment variable {ref['env']!r} is not allowlisted (--allow-secret-env)"
        raise errors.invalid("Endpoint", name, [errors.Cause(f"{field}.env", message)])
    if ref.get("file") is not None and ref["file"] not in settings.allow_secret_file:
        message = f"file {ref['file']!r} is not allowlisted (--allow-secret-file)"
        raise errors.invalid("Endpoint", name, [errors.Cause(f"{field}.file", message)])


def referenced_keys(endpoints: list[Object], secret: str) -> set[str]:
    """The keys of `secret` that the given Endpoints (of its namespace) reference."""
    keys = set()
    for endpoint in endpoints:
        ref = (endpoint.get("spec") or {}).get("apiKeySecretRef") or {}
        if ref.get("name") == secret and ref.get("key"):
            keys.add(ref["key"])
    return keys
