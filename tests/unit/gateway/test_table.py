"""The routing table: raw objects as the watches deliver them, and the snapshot built from them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from inferplane.gateway import table
from inferplane.gateway.wire.upstream import Origin
from inferplane.policy import quotas
from tests.unit.gateway.objects import (
    api_key,
    endpoint,
    objects_of,
    quota,
    service,
    table_of,
    token_hash,
)


def test_services_by_served_model_name_and_by_name() -> None:
    t = table_of(
        service("chat", [{"deployment": "d"}], modelName="org/Chat-1"),
        service("plain", [{"deployment": "d"}]),
        service("chat", [{"deployment": "d"}], namespace="other"),
    )
    assert set(t.services) == {("default", "org/Chat-1"), ("default", "plain"), ("other", "chat")}
    assert t.services_by_name[("default", "chat")].model == "org/Chat-1"
    assert t.services[("default", "org/Chat-1")].name == "chat"
    assert t.services[("default", "plain")].spec.routes[0].deployment == "d"


def test_endpoints_are_grouped_by_deployment_sorted_and_external_ones_are_not() -> None:
    t = table_of(
        endpoint("d-1", "d", url="https://10.0.0.2:9000/base/"),
        endpoint("d-0", "d", ready=False),
        endpoint("e-0", "e", region="eu"),
        endpoint("ext", "d", external=True, url="https://api.example.com"),
        endpoint("loose"),
    )
    assert [e.name for e in t.endpoints[("default", "d")]] == ["d-0", "d-1"]
    assert [e.name for e in t.endpoints[("default", "e")]] == ["e-0"]
    assert len(t.endpoints) == 2, "no group for an endpoint without a deployment"
    assert set(t.endpoints_by_name) == {
        ("default", n) for n in ("d-0", "d-1", "e-0", "ext", "loose")
    }
    d1 = t.endpoints_by_name[("default", "d-1")]
    assert d1.origin == Origin("10.0.0.2", 9000, tls=True, base_path=b"/base")
    assert (d1.deployment, d1.ready, d1.external, d1.auth) == ("d", True, False, None)
    assert t.endpoints_by_name[("default", "e-0")].region == "eu"
    assert t.endpoints_by_name[("default", "ext")].external
    assert t.ready_deployments() == {("default", "d"), ("default", "e")}


def test_a_deployment_with_no_ready_endpoint_is_not_ready() -> None:
    t = table_of(endpoint("d-0", "d", ready=False))
    assert t.ready_deployments() == set()
    assert ("default", "d") in t.endpoints


def test_keys_by_hash_with_their_limits_and_expiry() -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    t = table_of(
        api_key(
            "ci",
            "sk-ci",
            namespace="team",
            rateLimits={"requestsPerMinute": 3, "tokensPerMinute": 100},
            budget={"cost": 5.0, "period": "month"},
            expiresAt=expires.isoformat(),
        ),
        api_key("free", "sk-free"),
        {"kind": "ApiKey", "metadata": {"name": "unhashed"}, "spec": {}},
    )
    assert set(t.keys) == {token_hash("sk-ci"), token_hash("sk-free")}
    ci = t.keys[token_hash("sk-ci")]
    assert (ci.namespace, ci.name, ci.subject) == ("team", "ci", "key team/ci")
    assert ci.limits == quotas.Limits(3, 100, 5.0, None, "month")
    assert ci.expires_at == expires.timestamp()
    free = t.keys[token_hash("sk-free")]
    assert free.limits.unlimited() and free.expires_at is None


def test_the_fleets_own_identities_are_not_inference_clients() -> None:
    t = table_of(
        api_key("agent-a", "sk-agent", namespace="inferplane-system", role="agent", cluster="a"),
        api_key("gw", "sk-gw", namespace="inferplane-system", role="gateway"),
        api_key("join", "sk-join", namespace="inferplane-system", role="join"),
        api_key("user", "sk-user", namespace="team", role="viewer"),
    )
    assert set(t.keys) == {token_hash("sk-user")}


def test_quotas_are_gathered_per_namespace() -> None:
    t = table_of(
        quota("a", rateLimits={"requestsPerMinute": 10}),
        quota("b", budget={"tokens": 1000, "period": "total"}),
        quota("c", namespace="other", rateLimits={"tokensPerMinute": 5}),
    )
    assert sorted(t.quotas["default"]) == [
        ("quota default/a", quotas.Limits(requests_per_minute=10)),
        ("quota default/b", quotas.Limits(None, None, None, 1000, "total")),
    ]
    assert t.quotas["other"] == (("quota other/c", quotas.Limits(tokens_per_minute=5)),)


def test_invalid_objects_are_skipped_and_the_rest_is_built() -> None:
    t = table_of(
        service("good", [{"deployment": "d"}]),
        service("no-routes", []),
        service("typo", [{"deployment": "d"}], stratgey="round-robin"),
        endpoint("bad-url", "d", url="ftp://x"),
        endpoint("no-replica", "d") | {"spec": {"url": "http://x", "deployment": "d"}},
        endpoint("ok", "d"),
        api_key("short", "x") | {"spec": {"tokenHash": "abc"}},
        quota("empty-budget", budget={}),
    )
    assert list(t.services_by_name) == [("default", "good")]
    assert [e.name for e in t.endpoints[("default", "d")]] == ["ok"]
    assert t.keys == {} and t.quotas == {}


def external(**ref: str) -> dict[str, object]:
    return endpoint("ext", external=True, url="https://api.example.com", apiKeySecretRef=ref)


def allowing(*items: dict[str, object], env: str = "", file: str = "") -> table.Table:
    objects = objects_of(*items)
    objects.allow_env = frozenset({env} - {""})
    objects.allow_file = frozenset({file} - {""})
    return table.build(objects)


def test_secret_from_an_allowlisted_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXT_KEY", "sk-upstream")
    entry = allowing(external(env="EXT_KEY"), env="EXT_KEY").endpoints_by_name[("default", "ext")]
    assert entry.auth == b"Bearer sk-upstream"


def test_secret_from_an_allowlisted_file_is_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("sk-file\n")
    t = allowing(external(file=str(secret)), file=str(secret))
    assert t.endpoints_by_name[("default", "ext")].auth == b"Bearer sk-file"


def test_an_environment_variable_or_file_not_allowlisted_is_never_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The escalation of issue 11: a tenant names the gateway's own admin token."""
    monkeypatch.setenv("INFERPLANE_TOKEN", "ipk_admin")
    token = tmp_path / "admin-token"
    token.write_text("ipk_admin")
    for ref in ({"env": "INFERPLANE_TOKEN"}, {"file": str(token)}):
        t = allowing(external(**ref), env="OTHER", file=str(tmp_path / "other"))
        assert ("default", "ext") not in t.endpoints_by_name, ref


def secret(name: str, version: str = "1") -> dict[str, object]:
    return {
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": version},
        "spec": {},
        "status": {"keys": {"token": 9}},
    }


def test_a_secret_reference_uses_the_revealed_value_of_its_own_namespace() -> None:
    objects = objects_of(external(name="upstream", key="token"), secret("upstream"))
    assert objects.wanted_secrets() == {("default", "upstream"): "1"}
    objects.values[("default", "upstream")] = ("1", {"token": "sk-secret"})
    assert objects.wanted_secrets() == {}
    entry = table.build(objects).endpoints_by_name[("default", "ext")]
    assert entry.auth == b"Bearer sk-secret"
    objects.values[("other", "upstream")] = ("1", {"token": "sk-other"})
    objects.values.pop(("default", "upstream"))
    assert ("default", "ext") not in table.build(objects).endpoints_by_name


def test_a_changed_secret_is_wanted_again() -> None:
    objects = objects_of(external(name="upstream", key="token"), secret("upstream", "7"))
    objects.values[("default", "upstream")] = ("6", {"token": "old"})
    assert objects.wanted_secrets() == {("default", "upstream"): "7"}


def test_an_endpoint_whose_secret_is_missing_is_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    monkeypatch.setenv("EMPTY_KEY", "")
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    for ref in (
        {"env": "NO_SUCH_KEY"},
        {"env": "EMPTY_KEY"},
        {"file": str(tmp_path / "none")},
        {"file": str(empty)},
        {"name": "absent", "key": "token"},
    ):
        objects = objects_of(external(**ref), endpoint("other", "d"))
        objects.allow_env = frozenset({"NO_SUCH_KEY", "EMPTY_KEY"})
        objects.allow_file = frozenset({str(tmp_path / "none"), str(empty)})
        t = table.build(objects)
        assert ("default", "ext") not in t.endpoints_by_name, ref
        assert ("default", "other") in t.endpoints_by_name


def test_resync_replaces_a_kind_and_says_whether_it_changed() -> None:
    objects = objects_of(
        endpoint("a", "d"), endpoint("b", "d"), service("s", [{"deployment": "d"}])
    )
    assert objects.synced == set(table.KINDS)
    fresh = {"items": [endpoint("c", "d")]}
    assert objects.apply("Endpoint", "RESYNC", fresh)
    assert not objects.apply("Endpoint", "RESYNC", fresh)
    t = table.build(objects)
    assert [e.name for e in t.endpoints[("default", "d")]] == ["c"]
    assert ("default", "s") in t.services_by_name, "other kinds untouched"


def test_added_modified_and_deleted() -> None:
    objects = table.Objects()
    assert objects.apply("Endpoint", "ADDED", endpoint("a", "d", ready=False))
    assert table.build(objects).ready_deployments() == set()
    assert objects.apply("Endpoint", "MODIFIED", endpoint("a", "d", ready=True))
    assert table.build(objects).ready_deployments() == {("default", "d")}
    assert objects.apply("Endpoint", "DELETED", endpoint("a", "d"))
    assert not objects.apply("Endpoint", "DELETED", endpoint("a", "d")), "already gone"
    assert table.build(objects).endpoints_by_name == {}
    assert not objects.apply("Endpoint", "BOOKMARK", endpoint("a", "d"))
    assert objects.synced == set()


def test_objects_without_a_namespace_are_in_default() -> None:
    objects = table.Objects()
    svc = service("s", [{"deployment": "d"}])
    del svc["metadata"]["namespace"]
    objects.apply("Service", "ADDED", svc)
    assert ("default", "s") in table.build(objects).services_by_name
    assert objects.apply("Service", "DELETED", service("s", [{"deployment": "d"}]))


def test_objects_round_trip_through_json() -> None:
    objects = objects_of(endpoint("a", "d"), api_key("k", "t"))
    restored = table.Objects()
    restored.load(objects.to_json())
    assert restored.by_kind == objects.by_kind
    assert restored.synced == set(), "a restored table was not synced in this process's life"
