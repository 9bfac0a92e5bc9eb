"""Engine tokens: one sealed Secret per replica, named in its status, gone with the replica;
and the admission rules that keep clients from naming one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from inferplane import store as store_pkg
from inferplane.api import secrets as api_secrets
from inferplane.control import errors, secretbox
from inferplane.control import secrets as control_secrets
from inferplane.control.controllers import enginetokens
from inferplane.control.runtime.controller import Key, Reconciler, Watch
from inferplane.control.runtime.objects import Objects
from inferplane.control.settings import ControlSettings
from tests.unit.control import stored

NS = "team"
SYSTEM = "inferplane-system"


def replica(name: str = "chat-0") -> dict[str, Any]:
    spec = {
        "deployment": "chat",
        "model": {"name": "m", "version": "v1", "source": "file:///models/m"},
        "cluster": "eu-1",
        "pool": "eu-1-cpu",
    }
    return {"kind": "Replica", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def reconcile(controller: Reconciler, key: Key) -> None:
    asyncio.run(controller.reconcile(key))


def keys_of(watch: Watch, obj: dict[str, Any]) -> list[Key]:
    async def mapped() -> list[Key]:
        return await watch.keys(obj)

    return asyncio.run(mapped())


@pytest.fixture
def box(tmp_path: Path) -> secretbox.SecretBox:
    return secretbox.load(tmp_path / "secret-keys")


def test_a_token_is_256_random_bits_a_bearer_can_carry() -> None:
    tokens = {enginetokens.new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) == 43 and token.isascii() and " " not in token  # 32 bytes, base64


def test_the_secret_is_named_for_the_uid_and_labelled_with_the_replica() -> None:
    uid = "0b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
    obj = replica()
    obj["metadata"]["uid"] = uid
    secret = enginetokens.token_secret(obj, "tok")
    assert secret["metadata"]["name"] == f"engine-{uid}"
    assert secret["metadata"]["namespace"] == SYSTEM
    assert enginetokens.replica_key(secret) == Key(NS, "chat-0")
    assert secret["spec"] == {"type": api_secrets.ENGINE_TOKEN, "data": {"token": "tok"}}
    assert api_secrets.replica_uid_of(secret["metadata"]["name"]) == uid
    assert api_secrets.replica_uid_of("engine-api") is None
    assert enginetokens.orphaned(secret, None)
    assert not enginetokens.orphaned(secret, obj)
    again = {**obj, "metadata": {**obj["metadata"], "uid": "1" + uid[1:]}}
    assert enginetokens.orphaned(secret, again), "made again under the same name: not its token"


def test_a_replica_gets_one_sealed_token_named_in_its_status(
    store: store_pkg.Store, box: secretbox.SecretBox
) -> None:
    made = stored.create(store, replica())
    controller = enginetokens.EngineTokenController(Objects(store, lambda: None), box)
    reconcile(controller, Key(NS, "chat-0"))
    name = f"engine-{made['metadata']['uid']}"
    secret = store.get("Secret", SYSTEM, name)
    assert "data" not in secret["spec"] and secret["status"]["keys"] == {"token": 43}
    token = control_secrets.reveal(box, secret)["token"]
    assert token not in repr(secret)
    assert store.get("Replica", NS, "chat-0")["status"]["engineTokenSecret"] == name
    reconcile(controller, Key(NS, "chat-0"))
    assert control_secrets.reveal(box, store.get("Secret", SYSTEM, name))["token"] == token


def test_the_token_goes_with_its_replica_even_one_removed_while_nobody_watched(
    store: store_pkg.Store, box: secretbox.SecretBox
) -> None:
    objects = Objects(store, lambda: None)
    controller = enginetokens.EngineTokenController(objects, box)
    collector = enginetokens.EngineTokenCollector(objects)
    kept, gone = stored.create(store, replica("kept")), stored.create(store, replica("gone"))
    for obj in (kept, gone):
        reconcile(controller, Key(NS, obj["metadata"]["name"]))
    store.delete("Replica", NS, "gone")
    for secret in store.list("Secret", SYSTEM)[0]:  # what a start (a full list) queues
        reconcile(collector, Key(SYSTEM, secret["metadata"]["name"]))
    names = {s["metadata"]["name"] for s in store.list("Secret", SYSTEM)[0]}
    assert names == {f"engine-{kept['metadata']['uid']}"}


def test_a_removed_replica_maps_to_its_token_and_other_secrets_are_left_alone(
    store: store_pkg.Store, box: secretbox.SecretBox
) -> None:
    collector = enginetokens.EngineTokenCollector(Objects(store, lambda: None))
    (watch,) = collector.watches
    removed = {"metadata": {"name": "r", "namespace": NS, "uid": "u-1", "deletionTimestamp": "x"}}
    assert keys_of(watch, removed) == [Key(SYSTEM, "engine-u-1")]
    held = {"metadata": {**removed["metadata"], "finalizers": ["inferplane.dev/agent-stop"]}}
    assert keys_of(watch, held) == [], "still draining: it keeps its token"
    opaque = {"kind": "Secret", "metadata": {"name": "engine-api", "namespace": SYSTEM}}
    stored.create(store, opaque)
    reconcile(collector, Key(SYSTEM, "engine-api"))
    assert store.get("Secret", SYSTEM, "engine-api")


def test_a_client_cannot_name_an_engine_token_on_an_endpoint() -> None:
    body = {"metadata": {"name": "e"}, "spec": {"url": "http://x", "engineTokenSecret": "t"}}
    with pytest.raises(errors.ApiProblem) as refused:
        control_secrets.refuse_endpoint_fields(body)
    assert refused.value.code == 422
    assert "spec.engineTokenSecret" in str(refused.value.body())
    control_secrets.refuse_endpoint_fields({"spec": {"engineTokenSecret": None}})

    ref = {"name": "engine-0b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b", "key": "token"}
    endpoint = {"metadata": {"name": "e"}, "spec": {"apiKeySecretRef": ref}}
    with pytest.raises(errors.ApiProblem) as refused:
        control_secrets.check_reference(endpoint, ControlSettings(data_dir=Path(".")))
    assert "spec.apiKeySecretRef.name" in str(refused.value.body())
