"""Scoped identities against a real control plane: join keys become agent keys bound to one
cluster; an agent touches only its own cluster, pools and replicas; a gateway reads routes and
keys and writes only usage and demand; tenants cannot write what controllers own; a Pool shows a
tenant only its own replicas (issue 11, item 2).

The control plane runs without controllers, so the objects the test writes as fleet admin stay
exactly as written."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferplane.agent import credential
from inferplane.api import wellknown
from tests.integration.manifests import API, apikey, deployment, path
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration

SYSTEM = "inferplane-system"
JOIN = f"{API}/join"


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlProcess]:
    process = ControlProcess(tmp_path_factory.mktemp("identities"), extra_args=["--no-controllers"])
    process.start()
    with process.http() as admin:
        for cluster in ("plane-a", "plane-b"):
            assert admin.post(path("clusters"), json=_cluster(cluster)).status_code == 201
            assert admin.post(path("pools"), json=_pool(f"{cluster}-cpu", cluster)).is_success
            body = _replica(f"r-{cluster}", "team-a", cluster)
            assert admin.post(path("replicas", "team-a"), json=body).status_code == 201
    yield process
    process.stop()


def _cluster(name: str) -> dict[str, Any]:
    return {"kind": "Cluster", "metadata": {"name": name}, "spec": {"region": "eu"}}


def _pool(name: str, cluster: str) -> dict[str, Any]:
    spec = {"cluster": cluster, "nodeCount": 1, "cpu": "4"}
    return {"kind": "Pool", "metadata": {"name": name}, "spec": spec}


def _replica(name: str, namespace: str, cluster: str) -> dict[str, Any]:
    spec = {
        "deployment": "chat",
        "model": {"name": "tiny", "version": "v1", "source": "file:///models/tiny"},
        "engine": {"recipe": "reference"},
        "cluster": cluster,
        "pool": f"{cluster}-cpu",
        "nodes": [0],
    }
    return {"kind": "Replica", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _key(control: ControlProcess, name: str, namespace: str, role: str, **spec: Any) -> str:
    body = apikey(name, namespace, role)
    body["spec"].update(spec)
    with control.http() as admin:
        answer = admin.post(path("apikeys", namespace), json=body)
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["status"]["token"]
    return token


@pytest.fixture(scope="module")
def agent_a(control: ControlProcess) -> str:
    """The agent key of plane-a, obtained the way an agent obtains it."""
    join = _key(control, "join-a", SYSTEM, "join", cluster="plane-a")
    with control.http(join) as http:
        answer = http.post(JOIN, json={"cluster": "plane-a"})
    assert answer.status_code in (200, 201), answer.text
    assert answer.json()["apiKey"] == f"{SYSTEM}/agent-plane-a"
    token: str = answer.json()["token"]
    return token


@pytest.fixture(scope="module")
def gateway(control: ControlProcess) -> str:
    return _key(control, "gw", SYSTEM, "gateway")


def test_a_join_key_becomes_one_clusters_agent_key_and_no_more(control: ControlProcess) -> None:
    bound = _key(control, "join-c", SYSTEM, "join", cluster="plane-c")
    free = _key(control, "join-any", SYSTEM, "join")
    with control.http(bound) as http:
        other = http.post(JOIN, json={"cluster": "plane-d"})
        first = http.post(JOIN, json={})  # the bound cluster is the default
        again = http.post(JOIN, json={"cluster": "plane-c"})  # rotates the key
        as_itself = http.get(path("deployments", "team-a"))
    assert other.status_code == 403, "a bound join key joins its own cluster only"
    assert first.status_code == 201 and first.json()["cluster"] == "plane-c"
    assert again.status_code == 200
    assert as_itself.status_code == 403, "a join key does nothing but join"
    with control.http(first.json()["token"]) as stale:
        assert stale.get(path("clusters", name="plane-c")).status_code == 401, "rotated away"
    with control.http(free) as http:
        taken = http.post(JOIN, json={"cluster": "plane-c"})
        fresh = http.post(JOIN, json={"cluster": "plane-e"})
        bad = http.post(JOIN, json={"cluster": "Not_A_Label"})
    assert taken.status_code == 409, "an unbound join key cannot take over a joined cluster"
    assert "agent-plane-c" in taken.json()["message"]
    assert fresh.status_code == 201
    assert bad.status_code == 422
    assert bad.json()["details"]["causes"][0]["field"] == "cluster"
    with control.http() as admin:
        key = admin.get(path("apikeys", SYSTEM, "agent-plane-e")).json()
    assert key["spec"]["role"] == "agent" and key["spec"]["cluster"] == "plane-e"


def test_component_roles_only_in_the_system_namespace(control: ControlProcess) -> None:
    with control.http() as admin:
        tenant = admin.post(path("apikeys", "team-a"), json=apikey("x", "team-a", "agent"))
        unnamed = admin.post(path("apikeys", SYSTEM), json=apikey("y", SYSTEM, "agent"))
        body = apikey("z", "team-a", "viewer")
        body["spec"]["cluster"] = "plane-a"
        viewer_cluster = admin.post(path("apikeys", "team-a"), json=body)
        edge = apikey("edge-plane-a", SYSTEM, "gateway")
        edge["spec"]["cluster"] = "plane-a"  # a plane edge's key: its tunnel carries plane-a
        edge_key = admin.post(path("apikeys", SYSTEM), json=edge)
    for answer, field in ((tenant, "spec.role"), (unnamed, "spec.cluster")):
        assert answer.status_code == 422, answer.text
        assert answer.json()["details"]["causes"][0]["field"] == field
    assert viewer_cluster.status_code == 422
    assert edge_key.status_code == 201, edge_key.text


def test_an_agent_writes_only_its_own_cluster_pools_and_replicas(
    control: ControlProcess, agent_a: str
) -> None:
    ready = {"status": {"phase": "Ready"}}
    with control.http(agent_a) as http:
        assert http.patch(path("clusters", name="plane-a", sub="status"), json=ready).is_success
        assert (
            http.patch(path("clusters", name="plane-b", sub="status"), json=ready).status_code
            == 403
        )
        assert http.get(path("clusters", name="plane-b")).status_code == 403
        assert http.get(path("clusters")).status_code == 403, "no listing of every cluster"
        label = {"metadata": {"labels": {"zone": "1"}}}
        assert http.patch(path("pools", name="plane-a-cpu"), json=label).is_success
        assert http.patch(path("pools", name="plane-b-cpu"), json=label).status_code == 403
        steal = {"spec": {"cluster": "plane-a"}}
        assert http.patch(path("pools", name="plane-b-cpu"), json=steal).status_code == 403
        assert http.post(path("pools"), json=_pool("mine", "plane-a")).status_code == 201
        assert http.post(path("pools"), json=_pool("theirs", "plane-b")).status_code == 403
        # Replicas: listed only with its cluster's selector, and only their status written.
        assert http.get(path("replicas")).status_code == 403
        listed = http.get(path("replicas"), params={"fieldSelector": "spec.cluster=plane-a"})
        assert [r["metadata"]["name"] for r in listed.json()["items"]] == ["r-plane-a"]
        mine = path("replicas", "team-a", "r-plane-a")
        theirs = path("replicas", "team-a", "r-plane-b")
        running = {"status": {"phase": "Starting"}}
        assert http.patch(mine + "/status", json=running).is_success
        assert http.patch(theirs + "/status", json=running).status_code == 403
        assert http.patch(mine, json={"spec": {"cluster": "plane-b"}}).status_code == 403
        assert http.patch(mine, json={"metadata": {"finalizers": ["x/y"]}}).is_success
        assert http.delete(mine).status_code == 403
        # Events only about its own objects.
        assert http.post(path("events", "team-a"), json=_event("r-plane-a")).status_code == 201
        assert http.post(path("events", "team-a"), json=_event("r-plane-b")).status_code == 403
        # Nothing else.
        assert http.get(path("deployments", "team-a")).status_code == 403
        assert http.get(path("apikeys", SYSTEM)).status_code == 403
        assert (
            http.post(path("deployments", "team-a"), json=deployment("d", "team-a")).status_code
            == 403
        )
        assert (
            http.get(f"{API}/agents/plane-b/log-requests", params={"timeoutSeconds": 0}).status_code
            == 403
        )
        assert http.get(
            f"{API}/agents/plane-a/log-requests", params={"timeoutSeconds": 0}
        ).is_success


def _event(replica: str) -> dict[str, Any]:
    involved = {"kind": "Replica", "namespace": "team-a", "name": replica}
    spec = {"involvedObject": involved, "reason": "EngineStarted", "message": "up"}
    return {
        "kind": "Event",
        "metadata": {"name": f"ev-{replica}", "namespace": "team-a"},
        "spec": spec,
    }


def test_a_gateway_reads_routes_and_writes_only_usage_and_demand(
    control: ControlProcess, gateway: str
) -> None:
    with control.http() as admin:
        assert admin.post(
            path("deployments", "team-a"), json=deployment("chat", "team-a")
        ).is_success
        _key(control, "user", "team-a", "viewer")
    demand = {"metadata": {"annotations": {wellknown.DEMAND_WAITING_ANNOTATION: "3"}}}
    with control.http(gateway) as http:
        for plural in ("services", "endpoints", "apikeys", "quotas", "secrets"):
            assert http.get(path(plural)).status_code == 200, plural
        assert http.get(path("deployments")).status_code == 403
        assert http.get(path("replicas")).status_code == 403
        deploy = path("deployments", "team-a", "chat")
        assert http.patch(deploy, json=demand).is_success
        assert http.patch(deploy, json={"spec": {"replicas": 9}}).status_code == 403
        labelled = {"metadata": {"labels": {"x": "y"}}}
        assert http.patch(deploy, json=labelled).status_code == 403
        key = path("apikeys", "team-a", "user")
        assert http.patch(key + "/status", json={"status": {"tokensUsed": 5}}).is_success
        assert http.patch(key, json={"spec": {"role": "admin"}}).status_code == 403
        made = http.post(path("apikeys", "team-a"), json=apikey("mine", "team-a", "admin"))
        assert made.status_code == 403
        assert http.post(JOIN, json={"cluster": "plane-z"}).status_code == 403


def test_tenants_cannot_write_what_controllers_own(control: ControlProcess) -> None:
    deployer = _key(control, "dep", "team-a", "deployer")
    admin_a = _key(control, "adm", "team-a", "admin")
    internal = {"kind": "Endpoint", "metadata": {"name": "e1", "namespace": "team-a"}}
    internal["spec"] = {"url": "http://127.0.0.1:9/", "replica": "r-plane-a"}
    external = {"kind": "Endpoint", "metadata": {"name": "e2", "namespace": "team-a"}}
    external["spec"] = {"url": "https://api.example.com", "external": True, "upstreamModel": "m"}
    for token in (deployer, admin_a):
        with control.http(token) as http:
            made = http.post(path("replicas", "team-a"), json=_replica("fake", "team-a", "plane-a"))
            assert made.status_code == 403
            assert "controllers" in made.json()["message"]
            assert http.post(path("events", "team-a"), json=_event("r-plane-a")).status_code == 403
            assert http.post(path("endpoints", "team-a"), json=internal).status_code == 403
            replica = path("replicas", "team-a", "r-plane-a")
            assert (
                http.patch(replica + "/status", json={"status": {"phase": "Ready"}}).status_code
                == 403
            )
            assert http.patch(replica, json={"spec": {"cluster": "plane-b"}}).status_code == 403
    with control.http(deployer) as http:
        assert http.post(path("endpoints", "team-a"), json=external).status_code == 201
        internal_again = {
            "spec": {"external": False, "replica": "r-plane-a", "upstreamModel": None}
        }
        assert http.patch(path("endpoints", "team-a", "e2"), json=internal_again).status_code == 403
        status = {"status": {"readyReplicas": 99}}
        assert http.post(path("deployments", "team-a"), json=deployment("d2", "team-a")).is_success
        assert (
            http.patch(path("deployments", "team-a", "d2", "status"), json=status).status_code
            == 403
        )
        user = path("apikeys", "team-a", "dep")
    with control.http(admin_a) as http:
        reset = {"status": {"tokensUsed": 0, "costUsed": 0}}
        assert http.patch(user + "/status", json=reset).status_code == 403, "no budget resets"
        assert http.post(JOIN, json={"cluster": "plane-a"}).status_code == 403


def test_a_pool_shows_a_tenant_only_its_own_replicas(control: ControlProcess) -> None:
    nodes = [{"index": 0, "replicas": ["team-a/r1", "team-b/secret-r"], "cpu": "2"}]
    with control.http() as admin:
        answer = admin.patch(
            path("pools", name="plane-a-cpu", sub="status"), json={"status": {"nodes": nodes}}
        )
        assert answer.is_success, answer.text
        fleet_view = admin.get(path("pools", name="plane-a-cpu")).json()
    viewer = _key(control, "view", "team-a", "viewer")
    with control.http(viewer) as http:
        one = http.get(path("pools", name="plane-a-cpu")).json()
        listed = [
            p
            for p in http.get(path("pools")).json()["items"]
            if p["metadata"]["name"] == "plane-a-cpu"
        ]
        with http.stream(
            "GET", path("pools"), params={"watch": "true", "timeoutSeconds": 1}
        ) as stream:
            watched = b"".join(stream.iter_bytes())
    assert fleet_view["status"]["nodes"][0]["replicas"] == ["team-a/r1", "team-b/secret-r"]
    for shown in (one, listed[0]):
        assert shown["status"]["nodes"][0]["replicas"] == ["team-a/r1"]
        assert shown["status"]["nodes"][0]["cpu"] == "2", "capacity figures stay"
    assert b"team-a/r1" in watched and b"secret-r" not in watched


def test_an_agent_keeps_the_credential_it_joined_with(
    control: ControlProcess, tmp_path: Path
) -> None:
    join = _key(control, "join-k", SYSTEM, "join", cluster="plane-k")
    token = credential.obtain(control.url, "plane-k", join, tmp_path)
    saved = credential.path_in(tmp_path)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert join not in saved.read_text()
    assert credential.obtain(control.url, "plane-k", None, tmp_path) == token, "kept, not rejoined"
    with pytest.raises(credential.CredentialError, match="plane-k"):
        credential.kept(tmp_path, "plane-other")
    with httpx.Client(base_url=control.url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get(path("clusters", name="plane-k")).status_code in (200, 404)
        assert http.get(path("clusters", name="plane-a")).status_code == 403


LOAD = f"{API}/load"


def test_load_reports_are_for_components_and_their_own_cluster_only(
    control: ControlProcess, agent_a: str, gateway: str
) -> None:
    """The metrics channel (issue 13, item 3): agents report their own cluster's replicas,
    gateways their traffic; tenants neither; bad numbers are refused naming the field."""
    replica = {"namespace": "team-a", "name": "r-plane-a", "running": 2, "waiting": 1}
    traffic = {"deployments": [{"namespace": "team-a", "name": "chat", "held": 1}]}
    tenant = _key(control, "deployer-load", "team-a", "deployer")
    with control.http(agent_a) as http:
        ok = http.post(f"{LOAD}/replicas", json={"replicas": [replica]})
        assert ok.status_code == 202 and ok.json() == {"kept": 1}, ok.text
        other = http.post(f"{LOAD}/replicas", json={"cluster": "plane-b", "replicas": [replica]})
        assert other.status_code == 403
        assert http.post(f"{LOAD}/gateways", json=traffic).status_code == 403
        bad = http.post(f"{LOAD}/replicas", json={"replicas": [{**replica, "running": -1}]})
        assert bad.status_code == 422
        assert bad.json()["details"]["causes"][0]["field"] == "replicas[0].running"
        nan = http.post(
            f"{LOAD}/replicas",
            content=b'{"replicas": [{"namespace": "team-a", "name": "x", "kvCacheUsage": 2}]}',
        )
        assert nan.status_code == 422 and "kvCacheUsage" in nan.text
    with control.http(gateway) as http:
        assert http.post(f"{LOAD}/gateways", json=traffic).status_code == 202
        assert http.post(f"{LOAD}/replicas", json={"replicas": [replica]}).status_code == 403
        unknown = http.post(f"{LOAD}/gateways", json={"deployments": [{"namespace": "a"}]})
        assert unknown.status_code == 422 and "deployments[0].name" in unknown.text
    with control.http(tenant) as http:
        assert http.post(f"{LOAD}/replicas", json={"replicas": [replica]}).status_code == 403
        assert http.post(f"{LOAD}/gateways", json=traffic).status_code == 403
    with control.http() as admin:
        named = admin.post(f"{LOAD}/replicas", json={"replicas": [replica]})
        assert named.status_code == 422 and "cluster" in named.text
