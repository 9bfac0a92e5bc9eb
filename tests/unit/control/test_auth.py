from datetime import UTC, datetime, timedelta

import pytest

from inferplane.api import registry
from inferplane.control import auth, errors


def key(name: str, namespace: str, role: str, token: str, **spec: object) -> dict[str, object]:
    return {
        "kind": "ApiKey",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"role": role, "tokenHash": auth.hash_token(token), **spec},
    }


def authn_with(*objs: dict[str, object]) -> auth.Authenticator:
    authn = auth.Authenticator()
    authn.load(list(objs))  # type: ignore[arg-type]
    return authn


def test_only_the_hash_is_needed_and_the_token_maps_to_its_principal() -> None:
    authn = authn_with(key("ci", "team-a", "deployer", "ipk_secret"))
    principal = authn.authenticate("Bearer ipk_secret")
    assert (principal.name, principal.namespace, principal.role) == ("ci", "team-a", "deployer")


@pytest.mark.parametrize(
    ("header", "text"),
    [
        (None, "missing bearer token"),
        ("Basic abc", "malformed Authorization header"),
        ("Bearer wrong", "invalid bearer token"),
    ],
)
def test_bad_tokens_are_401(header: str | None, text: str) -> None:
    authn = authn_with(key("ci", "team-a", "deployer", "ipk_secret"))
    with pytest.raises(errors.ApiProblem) as caught:
        authn.authenticate(header)
    assert caught.value.code == 401
    assert text in caught.value.message


def test_expired_and_removed_keys_stop_working() -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    obj = key("old", "team-a", "viewer", "ipk_old", expiresAt=past)
    authn = authn_with(obj, key("ci", "team-a", "admin", "ipk_ci"))
    with pytest.raises(errors.ApiProblem, match="expired"):
        authn.authenticate("Bearer ipk_old")
    authn.remove(key("ci", "team-a", "admin", "ipk_ci"))
    with pytest.raises(errors.ApiProblem, match="invalid"):
        authn.authenticate("Bearer ipk_ci")


def principal(role: auth.Role, namespace: str = "team-a") -> auth.Principal:
    return auth.Principal("k", namespace, role)


@pytest.mark.parametrize(
    ("role", "verb", "plural", "namespace", "allowed"),
    [
        ("viewer", "get", "deployments", "team-a", True),
        ("viewer", "create", "deployments", "team-a", False),
        ("deployer", "create", "deployments", "team-a", True),
        ("deployer", "get", "deployments", "team-b", False),
        ("deployer", "delete", "deployments", "team-b", False),
        ("deployer", "get", "apikeys", "team-a", False),
        ("admin", "create", "apikeys", "team-a", True),
        ("admin", "create", "apikeys", "team-b", False),
        ("viewer", "list", "clusters", None, True),
        ("admin", "create", "clusters", None, False),
    ],
)
def test_roles_apply_in_their_own_namespace(
    role: auth.Role, verb: auth.Verb, plural: str, namespace: str | None, allowed: bool
) -> None:
    info = registry.by_plural(plural)
    if allowed:
        auth.authorize(principal(role), verb, info, namespace)
        return
    with pytest.raises(errors.ApiProblem) as caught:
        auth.authorize(principal(role), verb, info, namespace)
    assert caught.value.code == 403


def test_a_system_admin_may_do_anything_anywhere() -> None:
    fleet = auth.Principal("root", auth.SYSTEM_NAMESPACE, "admin")
    assert fleet.fleet_admin
    auth.authorize(fleet, "create", registry.by_plural("clusters"), None)
    auth.authorize(fleet, "delete", registry.by_plural("apikeys"), "team-b")
