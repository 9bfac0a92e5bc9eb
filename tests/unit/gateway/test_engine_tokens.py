"""A replica's Endpoint names its engine token: the gateway routes there only once it holds the
token, sends it as the bearer, and never lets another reference read it."""

from __future__ import annotations

from inferplane.gateway import table
from tests.unit.gateway.objects import endpoint, objects_of

SYSTEM = "inferplane-system"
TOKEN = "engine-0b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"


def test_a_replica_endpoint_waits_for_its_token_then_sends_it() -> None:
    objects = objects_of(endpoint("r-0", "chat", engineTokenSecret=TOKEN))
    assert objects.wanted_secrets() == {(SYSTEM, TOKEN): ""}
    assert ("default", "r-0") not in table.build(objects).endpoints_by_name
    objects.values[(SYSTEM, TOKEN)] = ("5", {"token": "tok-r0"})
    assert objects.wanted_secrets() == {}
    entry = table.build(objects).endpoints_by_name[("default", "r-0")]
    assert entry.auth == b"Bearer tok-r0"


def test_an_endpoint_without_a_token_is_sent_nothing() -> None:
    entry = table.build(objects_of(endpoint("r-0", "chat"))).endpoints_by_name[("default", "r-0")]
    assert entry.auth is None


def test_an_external_endpoint_never_carries_an_engine_token() -> None:
    ext = endpoint("ext", url="https://tenant.example", external=True, engineTokenSecret=TOKEN)
    objects = objects_of(ext)
    objects.values[(SYSTEM, TOKEN)] = ("5", {"token": "tok-r0"})
    assert objects.wanted_secrets() == {}
    assert table.build(objects).endpoints_by_name[("default", "ext")].auth is None


def test_an_api_key_reference_never_reads_an_engine_token() -> None:
    ref = {"name": TOKEN, "key": "token"}
    ext = endpoint("ext", namespace=SYSTEM, url="https://x.example", external=True,
                   apiKeySecretRef=ref)  # fmt: skip
    secret = {
        "kind": "Secret",
        "metadata": {"name": TOKEN, "namespace": SYSTEM, "resourceVersion": "5"},
        "spec": {"type": "inferplane.dev/engine-token"},
    }
    objects = objects_of(ext, secret, endpoint("r-0", "chat", engineTokenSecret=TOKEN))
    assert set(objects.wanted_secrets()) == {(SYSTEM, TOKEN)}  # for r-0 only
    objects.values[(SYSTEM, TOKEN)] = ("5", {"token": "tok-r0"})
    assert (SYSTEM, "ext") not in table.build(objects).endpoints_by_name


def test_a_gone_endpoint_takes_its_token_out_of_memory() -> None:
    objects = objects_of(endpoint("r-0", "chat", engineTokenSecret=TOKEN))
    objects.values[(SYSTEM, TOKEN)] = ("5", {"token": "tok-r0"})
    objects.forget_unreferenced()
    assert (SYSTEM, TOKEN) in objects.values
    objects.apply("Endpoint", "DELETED", endpoint("r-0", "chat", engineTokenSecret=TOKEN))
    objects.forget_unreferenced()
    assert objects.values == {}
