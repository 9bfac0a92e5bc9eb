"""Engine tokens: every Replica gets a token its engine requires, gone with the replica.

For each Replica, `EngineTokenController` keeps a Secret `engine-<replica uid>` of type
inferplane.dev/engine-token in inferplane-system: key `token`, 256 random bits, sealed with
the control plane's SecretBox as every Secret value is, labelled with the replica's namespace
and name. It then sets the replica's `status.engineTokenSecret`, which is the agent's cue to
reveal the token and start the engine with it; the Endpoint controller names the same Secret
on the replica's Endpoint for the gateways. control/reveal.py says who may receive it.

Owner references do not reach across namespaces (the store cascades a deletion within the
owner's namespace only), so `EngineTokenCollector` removes the Secret instead: it reconciles
engine-token Secrets and deletes one whose replica (its labels, and the uid in its name) is
gone. It lists every Secret when it starts, so a replica deleted while the control plane was
down loses its token too.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from inferplane.api import meta
from inferplane.api import secrets as api_secrets
from inferplane.control import secrets as control_secrets
from inferplane.control.runtime.controller import Key, Result, Watch
from inferplane.control.runtime.objects import Objects
from inferplane.control.secretbox import SecretBox
from inferplane.store import base as store_base

Object = dict[str, Any]
SYSTEM = api_secrets.ENGINE_TOKEN_NAMESPACE
TOKEN_BYTES = 32
"""256 random bits per token."""


# -- pure parts -------------------------------------------------------------------------------


def new_token() -> str:
    """A fresh token: URL-safe base64, so any engine takes it as a bearer token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_secret(replica: Object, token: str) -> Object:
    """The (unsealed) engine-token Secret of `replica`."""
    rmeta = replica["metadata"]
    secret = api_secrets.Secret(
        metadata=meta.ObjectMeta(
            name=api_secrets.engine_token_name(rmeta["uid"]),
            namespace=SYSTEM,
            labels={
                api_secrets.REPLICA_NAMESPACE_LABEL: rmeta["namespace"],
                api_secrets.REPLICA_NAME_LABEL: rmeta["name"],
            },
        ),
        spec=api_secrets.SecretSpec(
            type=api_secrets.ENGINE_TOKEN, data={api_secrets.ENGINE_TOKEN_KEY: token}
        ),
    )
    return secret.to_dict()


def wants_token(replica: Object) -> bool:
    """A replica that is not on its way out gets a token (one being deleted keeps its own)."""
    rmeta = replica["metadata"]
    return bool(rmeta.get("uid")) and not rmeta.get("deletionTimestamp")


def is_engine_token(secret: Object) -> bool:
    smeta = secret["metadata"]
    return (
        smeta.get("namespace") == SYSTEM
        and (secret.get("spec") or {}).get("type") == api_secrets.ENGINE_TOKEN
    )


def replica_key(secret: Object) -> Key | None:
    """The replica an engine-token Secret belongs to, from its labels."""
    labels = secret["metadata"].get("labels") or {}
    namespace = labels.get(api_secrets.REPLICA_NAMESPACE_LABEL)
    name = labels.get(api_secrets.REPLICA_NAME_LABEL)
    return Key(namespace, name) if namespace and name else None


def orphaned(secret: Object, replica: Object | None) -> bool:
    """The token's replica is gone: none by that name, or one of another uid (made again)."""
    if replica is None:
        return True
    uid = api_secrets.replica_uid_of(secret["metadata"]["name"])
    return uid != replica["metadata"].get("uid")


# -- the controllers --------------------------------------------------------------------------


class EngineTokenController:
    """Replica → its engine-token Secret, then status.engineTokenSecret."""

    name = "engine-tokens"
    kind = "Replica"

    def __init__(self, objects: Objects, box: SecretBox) -> None:
        self._objects = objects
        self._box = box
        self.watches: list[Watch] = []

    async def reconcile(self, key: Key) -> Result:
        replica = await self._objects.get("Replica", key.namespace, key.name)
        if replica is None or not wants_token(replica):
            return Result()
        name = api_secrets.engine_token_name(replica["metadata"]["uid"])
        if await self._objects.get("Secret", SYSTEM, name) is None:
            sealed = control_secrets.seal(self._box, token_secret(replica, new_token()))
            with contextlib.suppress(store_base.AlreadyExistsError):
                await self._objects.create(sealed)  # else made meanwhile: that one holds
        status = replica.get("status") or {}
        if status.get("engineTokenSecret") != name:
            await self._objects.write_status(replica, {**status, "engineTokenSecret": name})
        return Result()


class EngineTokenCollector:
    """Engine-token Secret → deleted once its replica is gone."""

    name = "engine-token-collector"
    kind = "Secret"

    def __init__(self, objects: Objects) -> None:
        self._objects = objects
        self.watches = [Watch("Replica", self._token_of_removed)]

    async def _token_of_removed(self, replica: Object) -> list[Key]:
        rmeta = replica["metadata"]
        removed = rmeta.get("deletionTimestamp") and not rmeta.get("finalizers")
        if not removed or not rmeta.get("uid"):
            return []
        return [Key(SYSTEM, api_secrets.engine_token_name(rmeta["uid"]))]

    async def reconcile(self, key: Key) -> Result:
        if key.namespace != SYSTEM or api_secrets.replica_uid_of(key.name) is None:
            return Result()
        secret = await self._objects.get("Secret", SYSTEM, key.name)
        if secret is None or not is_engine_token(secret):
            return Result()
        owner = replica_key(secret)
        replica = None
        if owner is not None:
            replica = await self._objects.get("Replica", owner.namespace, owner.name)
        if orphaned(secret, replica):
            version = int(secret["metadata"]["resourceVersion"])
            await self._objects.delete("Secret", SYSTEM, key.name, resource_version=version)
        return Result()
