from datetime import UTC, datetime, timedelta

import pytest

from inferplane.api import registry
from inferplane.control import auth, errors, scopes


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
        ("deployer", "create", "replicas", "team-a", False),
        ("deployer", "delete", "replicas", "team-a", True),
        ("admin", "create", "events", "team-a", False),
        ("deployer", "create", "endpoints", "team-a", True),  # external only: scopes.admit
    ],
)
def test_roles_apply_in_their_own_namespace(
    role: auth.Role, verb: auth.Verb, plural: str, namespace: str | None, allowed: bool
) -> None:
    info = registry.by_plural(plural)
    if allowed:
        scopes.authorize(principal(role), verb, info, namespace, None)
        return
    with pytest.raises(errors.ApiProblem) as caught:
        scopes.authorize(principal(role), verb, info, namespace, None)
    assert caught.value.code == 403


def test_a_system_admin_may_do_anything_anywhere() -> None:
    fleet = auth.Principal("root", auth.SYSTEM_NAMESPACE, "admin")
    assert fleet.fleet_admin
    scopes.authorize(fleet, "create", registry.by_plural("clusters"), None, None)
    scopes.authorize(fleet, "delete", registry.by_plural("apikeys"), "team-b", None)


def test_status_and_controller_kinds_are_not_a_tenants_to_write() -> None:
    admin = principal("admin")
    with pytest.raises(errors.ApiProblem, match="status is written by"):
        scopes.authorize(admin, "patch", registry.by_plural("deployments"), "team-a", "status")
    scopes.authorize(admin, "patch", registry.by_plural("deployments"), "team-a", "scale")


def component(role: auth.Role, cluster: str | None = None) -> auth.Principal:
    return auth.Principal(role, auth.SYSTEM_NAMESPACE, role, cluster=cluster)


def replica(cluster: str, **spec: object) -> dict[str, object]:
    return {
        "kind": "Replica",
        "metadata": {"name": "r", "namespace": "team-a", "resourceVersion": "1"},
        "spec": {"cluster": cluster, **spec},
    }


def test_an_agent_admits_only_its_own_clusters_objects() -> None:
    agent = component("agent", "plane-a")
    info = registry.by_plural("replicas")
    mine, theirs = replica("plane-a"), replica("plane-b")
    scopes.admit(agent, "patch", info, mine, {**mine, "status": {"phase": "Ready"}})
    with pytest.raises(errors.ApiProblem, match="another cluster"):
        scopes.admit(agent, "patch", info, theirs, theirs)
    with pytest.raises(errors.ApiProblem, match="only a replica's status"):
        scopes.admit(agent, "patch", info, mine, replica("plane-a", pool="gpu"))
    with pytest.raises(errors.ApiProblem, match="another cluster"):
        scopes.admit(agent, "patch", info, mine, theirs)  # moving it away is no escape
    for verb in ("create", "delete"):
        with pytest.raises(errors.ApiProblem):
            scopes.authorize(agent, verb, info, "team-a", None)  # type: ignore[arg-type]


def test_a_gateway_changes_a_deployment_only_by_its_demand_annotations() -> None:
    gateway = component("gateway")
    info = registry.by_plural("deployments")
    live = {"kind": "Deployment", "metadata": {"name": "d", "resourceVersion": "4"}, "spec": {}}
    demand = {**live, "metadata": {**live["metadata"], "annotations": {
        "inferplane.dev/demand-waiting": "2"}}}  # fmt: skip
    scopes.admit(gateway, "patch", info, live, demand)
    with pytest.raises(errors.ApiProblem, match="demand annotations"):
        scopes.admit(gateway, "patch", info, live, {**live, "spec": {"replicas": 3}})
    with pytest.raises(errors.ApiProblem):
        scopes.authorize(gateway, "patch", info, "team-a", "scale")
