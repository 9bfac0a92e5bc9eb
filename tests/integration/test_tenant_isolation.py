"""Tenant isolation through the gateway (issue 11): a key of namespace team-a cannot reach,
list or learn the existence of team-b's models, usage or errors — through the gateway's
OpenAI and V2 routes (the official `openai` client and raw httpx), its other routes, and the
control plane's API.

Real processes: a control plane with its controllers, a FAKE AGENT whose one Pool holds a
replica of each namespace, upstream stubs behind external Endpoints (team-b's behind a key
kept in a team-b Secret, and one that always fails), and a gateway running as a `gateway`
identity. Existence is compared answer to answer: a name of team-b's and a name of nothing,
of the same length, must get byte-identical answers but for the name and the request id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane import client as api_client
from tests.integration.fake_agent import FakeAgent, gpu_pool
from tests.integration.fleet import wait_for, workload
from tests.integration.manifests import API, apikey, model, path
from tests.support.control import ControlProcess
from tests.support.gateway_process import GatewayProcess, StubProcess

pytestmark = pytest.mark.integration

A, B = "team-a", "team-b"
FLEET = "inferplane-system"
PUBLIC = "public-model"
SECRET, ABSENT = "secret-model", "absent-model"
"""team-b's model, and one that exists nowhere: the same length, so Content-Length matches."""
ROLES = ("admin", "deployer", "viewer")
B_KEY_VALUE = "bravo-upstream-key-7f3a"
B_MARKS = ("team-b", "secret", "broken", "bravo", "ext-b", "chat-b", B_KEY_VALUE)
"""What of team-b may never appear in anything team-a is shown."""
CLUSTER = "shared"
TENANT_KINDS = (
    "services",
    "endpoints",
    "deployments",
    "replicas",
    "models",
    "apikeys",
    "quotas",
    "secrets",
    "events",
)

PER_REQUEST = frozenset(("x-request-id", "audit-id", "date"))
"""Headers whose values are the request's own (its id, the second it was answered)."""

Body = Callable[[str], dict[str, Any]]


def _chat(stream: bool) -> Body:
    return lambda m: {
        "model": m,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
        "stream": stream,
    }


def _completion(stream: bool) -> Body:
    return lambda m: {"model": m, "prompt": "hi", "max_tokens": 4, "stream": stream}


V2_INFER = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}]}
V2_GENERATE = {"text_input": "hi", "parameters": {"max_tokens": 4}}

ROUTES: dict[str, tuple[Callable[[str], str], Body]] = {
    "completions": (lambda m: "/v1/completions", _completion(False)),
    "completions-stream": (lambda m: "/v1/completions", _completion(True)),
    "chat": (lambda m: "/v1/chat/completions", _chat(False)),
    "chat-stream": (lambda m: "/v1/chat/completions", _chat(True)),
    "embeddings": (lambda m: "/v1/embeddings", lambda m: {"model": m, "input": "hi"}),
    "v2-infer": (lambda m: f"/v2/models/{m}/infer", lambda m: V2_INFER),
    "v2-generate": (lambda m: f"/v2/models/{m}/generate", lambda m: V2_GENERATE),
    "v2-generate-stream": (lambda m: f"/v2/models/{m}/generate_stream", lambda m: V2_GENERATE),
}
"""Every inference route the gateway serves (gateway/app.py), streamed and not."""


@dataclass
class Tenancy:
    control: ControlProcess
    gateway: GatewayProcess
    stubs: dict[str, StubProcess]
    keys: dict[tuple[str, str], str]
    """(namespace, key name) → token; the key names are the roles, and `limited`."""

    def send(self, namespace: str, role: str, route: str, model: str) -> httpx.Response:
        url, body = ROUTES[route]
        headers = {"Authorization": f"Bearer {self.keys[(namespace, role)]}"}
        with httpx.Client(base_url=self.gateway.url, headers=headers, timeout=30) as http:
            return http.post(url(model), json=body(model))

    def openai(self, namespace: str, role: str) -> openai.OpenAI:
        key = self.keys[(namespace, role)]
        return openai.OpenAI(base_url=f"{self.gateway.url}/v1", api_key=key, max_retries=0)


# -- the world ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(control: ControlProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenancy]:
    work = tmp_path_factory.mktemp("tenancy")
    stubs = {
        "alpha": StubProcess(work, "alpha"),
        "bravo": StubProcess(work, "bravo"),
        "bravo-down": StubProcess(work, "bravo-down", "fail503"),
    }
    for stub in stubs.values():
        stub.start()
    agent = FakeAgent(control, CLUSTER, labels={"test": "tenancy"}, pools=[gpu_pool("gpus")])
    gateway: GatewayProcess | None = None
    with api_client.Client(control.url, control.admin_token) as admin:
        try:
            keys = _create_tenants(admin, stubs)
            agent.start()
            gateway_key = _create_key(admin, "inferplane-system", "gw", "gateway")
            gateway = GatewayProcess(work, control=control.url, token=gateway_key).start()
            world = Tenancy(control, gateway, stubs, keys)
            for ns, name in ((A, PUBLIC), (B, SECRET)):
                wait_for(
                    f"the gateway to serve {ns}/{name}",
                    lambda ns=ns, name=name: world.send(ns, "admin", "chat", name).is_success,
                )
            yield world
        finally:
            _teardown(admin, agent, gateway, stubs)


def _create_tenants(admin: api_client.Client, stubs: dict[str, StubProcess]) -> dict[Any, str]:
    for obj in _objects(stubs):
        admin.create(obj)
    keys = {}
    for ns in (A, B):
        for role in ROLES:
            keys[(ns, role)] = _create_key(admin, ns, role, role)
        keys[(ns, "limited")] = _create_key(
            admin, ns, "limited", "viewer", rateLimits={"requestsPerMinute": 2}
        )
    return keys


def _objects(stubs: dict[str, StubProcess]) -> list[dict[str, Any]]:
    b_ref = {"name": "bravo-key", "key": "token"}
    objects = [
        _endpoint(A, "ext-a", stubs["alpha"].url),
        _service(A, PUBLIC, "ext-a"),
        {
            "kind": "Secret",
            "metadata": {"name": "bravo-key", "namespace": B},
            "spec": {"data": {"token": B_KEY_VALUE}},
        },
        _endpoint(B, "ext-b", stubs["bravo"].url, apiKeySecretRef=b_ref),
        _service(B, SECRET, "ext-b"),
        _endpoint(B, "ext-b-down", stubs["bravo-down"].url),
        _service(B, "broken-model", "ext-b-down"),
        {
            "kind": "Quota",
            "metadata": {"name": "bravo-quota", "namespace": B},
            "spec": {"rateLimits": {"requestsPerMinute": 10000}},
        },
        {
            "kind": "Event",
            "metadata": {"name": "secret-model-probed", "namespace": B},
            "spec": {
                "involvedObject": {"kind": "Service", "name": SECRET, "namespace": B},
                "reason": "Probed",
                "message": "team-b's own news",
            },
        },
    ]
    for ns, name in ((A, "chat-a"), (B, "chat-b")):
        objects += [model("tiny", ns), workload("tenancy", name) | {"metadata": _meta(ns, name)}]
    return objects


def _meta(namespace: str, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {"app": name}}


def _endpoint(namespace: str, name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Endpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, "external": True, **spec},
    }


def _service(namespace: str, name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"routes": [{"endpoint": endpoint}], **spec},
    }


def _create_key(admin: api_client.Client, namespace: str, name: str, role: str, **spec: Any) -> str:
    body = apikey(name, namespace, role)
    body["spec"].update(spec)
    token: str = admin.create(body)["status"]["token"]
    return token


def _teardown(
    admin: api_client.Client,
    agent: FakeAgent,
    gateway: GatewayProcess | None,
    stubs: dict[str, StubProcess],
) -> None:
    for ns in (A, B):
        for obj in admin.list("Deployment", namespace=ns).items:
            admin.delete("Deployment", obj["metadata"]["name"], namespace=ns)
    wait_for("the replicas to go", lambda: not admin.list("Replica").items)
    agent.stop()
    if gateway is not None:
        gateway.stop()
    for stub in stubs.values():
        stub.stop()


# -- comparing answers -------------------------------------------------------------------------


def _shape(response: httpx.Response, name: str) -> dict[str, Any]:
    """Everything of an answer but what differs per request, with `name` written <name>."""
    headers = sorted(
        (k, "<varies>" if k in PER_REQUEST else v.replace(name, "<name>"))
        for k, v in response.headers.items()
    )
    return {
        "status": response.status_code,
        "headers": headers,
        "body": response.text.replace(name, "<name>"),
    }


def _shows_nothing_of_b(text: str) -> None:
    for mark in B_MARKS:
        assert mark not in text, f"{mark!r} of team-b shown to team-a: {text[:2000]}"


def _everything(response: httpx.Response) -> str:
    return f"{response.headers}\n{response.text}"


# -- the gateway -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_v1_models_lists_only_the_keys_namespace(world: Tenancy, role: str) -> None:
    with world.openai(A, role) as client:
        models = client.models.list()
    assert [m.id for m in models.data] == [PUBLIC]
    assert {m.owned_by for m in models.data} == {A}
    with world.openai(B, role) as client:
        assert sorted(m.id for m in client.models.list().data) == ["broken-model", SECRET]
    headers = {"Authorization": f"Bearer {world.keys[(A, role)]}"}
    raw = httpx.get(f"{world.gateway.url}/v1/models", headers=headers)
    assert raw.status_code == 200
    _shows_nothing_of_b(_everything(raw))


@pytest.mark.parametrize("route", ROUTES)
def test_a_model_of_another_namespace_is_answered_as_one_that_exists_nowhere(
    world: Tenancy, route: str
) -> None:
    theirs = world.send(B, "admin", route, SECRET)
    assert _shape(theirs, SECRET) != _shape(world.send(B, "admin", route, ABSENT), ABSENT), (
        "team-b's own key reaches its model: the comparison below means something"
    )
    for role in ROLES:
        _same_answer(world, role, route, SECRET, ABSENT)
        _same_answer(world, role, route, f"{B}/{SECRET}", f"team-z/{ABSENT}")


def _same_answer(world: Tenancy, role: str, route: str, theirs: str, nothing: str) -> None:
    """team-a's answer for team-b's name equals that for a name of nothing."""
    secret = world.send(A, role, route, theirs)
    absent = world.send(A, role, route, nothing)
    assert secret.status_code == 404, secret.text
    assert _shape(secret, theirs) == _shape(absent, nothing)
    _shows_nothing_of_b(_everything(secret).replace(theirs, "<name>"))
    if not route.startswith("v2"):
        error = secret.json()["error"]
        assert (error["code"], error["param"]) == ("model_not_found", "model")


@pytest.mark.parametrize(
    ("kind", "stream"),
    [
        ("completions", False),
        ("completions", True),
        ("chat", False),
        ("chat", True),
        ("embeddings", False),
    ],
)
def test_the_openai_client_sees_the_same_error_for_both(
    world: Tenancy, kind: str, stream: bool
) -> None:
    with world.openai(A, "deployer") as client:
        seen = [_openai_error(client, kind, name, stream) for name in (SECRET, ABSENT)]
    assert seen[0] == seen[1]
    assert seen[0][:4] == (404, "model_not_found", "invalid_request_error", "model")


def _openai_error(client: openai.OpenAI, kind: str, name: str, stream: bool) -> tuple[Any, ...]:
    messages: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as caught:
        if kind == "completions":
            client.completions.create(model=name, prompt="hi", max_tokens=4, stream=stream)
        elif kind == "chat":
            client.chat.completions.create(
                model=name, messages=messages, max_tokens=4, stream=stream
            )
        else:
            client.embeddings.create(model=name, input="hi")
    error = caught.value
    headers = sorted((k, v) for k, v in error.response.headers.items() if k != "x-request-id")
    message = error.message.replace(name, "<name>")
    return error.status_code, error.code, error.type, error.param, message, headers


def test_a_route_or_fallback_naming_another_namespaces_objects_reaches_nothing(
    world: Tenancy,
) -> None:
    """team-a names team-b's Endpoint and Service in its own Service: they are looked up in
    team-a only, so the answer is that of names that exist nowhere, and team-b's upstream
    sees nothing."""
    before = world.stubs["bravo"].stats()["requests"]
    probes = {
        "probe-b": _service(A, "probe-b", "ext-b", fallback=[{"service": SECRET}]),
        "probe-x": _service(A, "probe-x", "ext-z", fallback=[{"service": ABSENT}]),
    }
    deployer = world.control.http(world.keys[(A, "deployer")])
    with deployer:
        for body in probes.values():
            assert deployer.post(path("services", A), json=body).status_code == 201
        try:
            wait_for("the probes to be served", lambda: _listed(world, set(probes)))
            theirs = world.send(A, "viewer", "chat", "probe-b")
            nothing = world.send(A, "viewer", "chat", "probe-x")
        finally:
            for name in probes:
                deployer.delete(path("services", A, name))
    assert theirs.status_code == 503, theirs.text
    assert _shape(theirs, "probe-b") == _shape(nothing, "probe-x")
    _shows_nothing_of_b(_everything(theirs))
    assert world.stubs["bravo"].stats()["requests"] == before
    wait_for("the probes to go", lambda: not _listed(world, set(probes)) or None)


def _listed(world: Tenancy, names: set[str]) -> bool:
    with world.openai(A, "viewer") as client:
        return names <= {m.id for m in client.models.list().data}


def test_team_bs_errors_limits_and_usage_never_reach_team_as_answers(world: Tenancy) -> None:
    routes = ("chat", "chat-stream", "embeddings", "completions-stream")
    baseline = [_shape(world.send(A, "admin", r, PUBLIC), PUBLIC) for r in routes]
    assert all(s["status"] == 200 for s in baseline)
    _team_b_makes_noise(world)
    after = [_shape(world.send(A, "admin", r, PUBLIC), PUBLIC) for r in routes]
    assert after == baseline, "team-b's failures, limits and usage changed team-a's answers"
    for shape in after:
        _shows_nothing_of_b(str(shape))
    assert world.stubs["alpha"].stats()["last_auth"] is None, "team-b's upstream key stays its"

    limited = [world.send(A, "limited", "chat", PUBLIC) for _ in range(3)]
    assert [r.status_code for r in limited] == [200, 200, 429]
    over = limited[-1]
    assert f"key {A}/limited" in over.json()["error"]["message"]
    assert over.headers["retry-after"]
    _shows_nothing_of_b(_everything(over))


def _team_b_makes_noise(world: Tenancy) -> None:
    """Usage, upstream failures and an exhausted key limit, all in team-b."""
    for route in ("chat", "chat-stream", "embeddings"):
        assert world.send(B, "admin", route, SECRET).status_code == 200
    assert world.stubs["bravo"].stats()["last_auth"] == f"Bearer {B_KEY_VALUE}"
    failed = [world.send(B, "deployer", r, "broken-model") for r in ("chat", "chat-stream")]
    assert all(r.status_code >= 500 for r in failed), [r.text for r in failed]
    statuses = [world.send(B, "limited", "chat", SECRET).status_code for _ in range(4)]
    assert statuses[-1] == 429


def test_the_gateways_metrics_show_a_key_only_its_own_namespace(world: Tenancy) -> None:
    _team_b_makes_noise_once(world)
    assert world.send(A, "admin", "chat", PUBLIC).status_code == 200
    for role in ROLES:
        headers = {"Authorization": f"Bearer {world.keys[(A, role)]}"}
        page = httpx.get(f"{world.gateway.url}/metrics", headers=headers)
        assert page.status_code == 200
        assert f'service="{A}/{PUBLIC}"' in page.text
        _shows_nothing_of_b(page.text)
    fleet = {"Authorization": f"Bearer {world.control.admin_token}"}
    whole = httpx.get(f"{world.gateway.url}/metrics", headers=fleet).text
    assert f'service="{B}/{SECRET}"' in whole, "a fleet admin's key sees every namespace"
    refused = httpx.get(f"{world.gateway.url}/metrics", headers={"Authorization": "Bearer no"})
    assert refused.status_code == 401


def test_the_gateways_metrics_show_no_tenant_to_an_anonymous_caller(world: Tenancy) -> None:
    _team_b_makes_noise_once(world)
    assert world.send(A, "admin", "chat", PUBLIC).status_code == 200
    page = httpx.get(f"{world.gateway.url}/metrics")
    assert page.status_code == 200
    _shows_nothing_of_b(page.text)
    assert "service=" not in page.text and A not in page.text and PUBLIC not in page.text
    assert "inferplane_gateway_routing_table_age_seconds " in page.text, "the gateway's own"


def test_an_operators_prometheus_scrapes_every_namespace_with_a_fleet_viewer_key(
    world: Tenancy, tmp_path: Path
) -> None:
    """As docs/gateway.md's scrape_config does: a viewer key of inferplane-system, read from
    its credentials_file (Prometheus trims the file's white space) and sent as the bearer."""
    _team_b_makes_noise_once(world)
    with api_client.Client(world.control.url, world.control.admin_token) as admin:
        token = _create_key(admin, FLEET, "prometheus", "viewer")
        try:
            credentials = tmp_path / "gateway-metrics-token"
            credentials.write_text(f"{token}\n")
            bearer = {"Authorization": f"Bearer {credentials.read_text().strip()}"}

            def scrape() -> httpx.Response:
                return httpx.get(f"{world.gateway.url}/metrics", headers=bearer)

            wait_for("the gateway to know the key", lambda: scrape().status_code == 200)
            page = scrape().text
        finally:
            admin.delete("ApiKey", "prometheus", namespace=FLEET)
    for service in (f"{A}/{PUBLIC}", f"{B}/{SECRET}", f"{B}/broken-model"):
        assert f'service="{service}"' in page, service


def _team_b_makes_noise_once(world: Tenancy) -> None:
    assert world.send(B, "admin", "chat", SECRET).status_code == 200
    assert world.send(B, "deployer", "chat", "broken-model").status_code >= 500


def test_the_gateways_other_routes_are_the_same_for_every_namespace(world: Tenancy) -> None:
    """Health and unknown paths answer alike whoever asks and whatever they name."""
    for url in ("/healthz", "/readyz", f"/v2/models/{SECRET}", f"/v2/models/{SECRET}/ready"):
        answers = []
        for key in (world.keys[(A, "admin")], world.keys[(B, "admin")], None):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            answer = httpx.get(f"{world.gateway.url}{url}", headers=headers)
            answers.append(_shape(answer, SECRET))
        assert answers[0] == answers[1] == answers[2], url


# -- the control plane -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_control_plane_lists_team_a_only_its_own(world: Tenancy, role: str) -> None:
    with world.control.http() as admin:
        for kind in TENANT_KINDS:
            items = admin.get(path(kind, B)).json()["items"]
            assert items, f"team-b has {kind}: the checks below mean something"
    with world.control.http(world.keys[(A, role)]) as http:
        for kind in TENANT_KINDS:
            everywhere = http.get(path(kind))
            assert everywhere.status_code in (200, 403), everywhere.text
            if everywhere.status_code == 200:
                namespaces = {i["metadata"]["namespace"] for i in everywhere.json()["items"]}
                assert namespaces <= {A}, kind
            _shows_nothing_of_b(everywhere.text)
            assert http.get(path(kind, B)).status_code == 403, kind
            with http.stream(
                "GET", path(kind), params={"watch": "true", "timeoutSeconds": 1}
            ) as watch:
                _shows_nothing_of_b(b"".join(watch.iter_bytes()).decode())


@pytest.mark.parametrize(
    ("kind", "theirs", "nothing"),
    [
        ("services", SECRET, ABSENT),
        ("apikeys", "limited", "missing"),
        ("secrets", "bravo-key", "nokey-xy"),
        ("quotas", "bravo-quota", "absentquota"),
        ("events", "secret-model-probed", "absent-model-probed"),
    ],
)
def test_team_bs_object_names_are_refused_as_names_of_nothing(
    world: Tenancy, kind: str, theirs: str, nothing: str
) -> None:
    with world.control.http(world.keys[(A, "admin")]) as http:
        for sub in ("", "status"):
            answers = [http.get(path(kind, B, name, sub)) for name in (theirs, nothing)]
            assert answers[0].status_code == 403, answers[0].text
            assert _shape(answers[0], theirs) == _shape(answers[1], nothing)


def test_team_bs_usage_is_not_readable_with_team_as_keys(world: Tenancy) -> None:
    """The gateway reports usage into each ApiKey's and Quota's status: team-a sees its own."""
    with world.control.http() as admin:
        wait_for(
            "team-b's usage to be reported",
            lambda: admin.get(path("apikeys", B, "admin")).json()["status"].get("tokensUsed"),
            timeout=30,
        )
    with world.control.http(world.keys[(A, "admin")]) as http:
        own = http.get(path("apikeys", A, "admin"))
        assert own.status_code == 200
        for kind, name in (("apikeys", "admin"), ("quotas", "bravo-quota")):
            assert http.get(path(kind, B, name, "status")).status_code == 403
        listed = http.get(f"{API}/apikeys")
        assert {i["metadata"]["namespace"] for i in listed.json()["items"]} == {A}


def test_a_pool_hides_other_namespaces_replicas_from_team_a(world: Tenancy) -> None:
    pool = f"{CLUSTER}-gpus"
    with world.control.http() as admin:
        fleet_view = wait_for(
            "a replica of each namespace on the shared pool",
            lambda: _pool_holding(admin, pool, {A, B}),
        )
    assert {r.split("/")[0] for r in _replicas(fleet_view)} == {A, B}
    with world.control.http(world.keys[(A, "viewer")]) as http:
        one = http.get(path("pools", name=pool)).json()
        listed = [
            p for p in http.get(path("pools")).json()["items"] if p["metadata"]["name"] == pool
        ]
        with http.stream("GET", path("pools"), params={"watch": "true", "timeoutSeconds": 1}) as w:
            watched = b"".join(w.iter_bytes()).decode()
    for shown in (one, listed[0]):
        assert {r.split("/")[0] for r in _replicas(shown)} == {A}
        _shows_nothing_of_b(str(shown))
    _shows_nothing_of_b(watched)


def _pool_holding(admin: httpx.Client, pool: str, namespaces: set[str]) -> dict[str, Any] | None:
    obj: dict[str, Any] = admin.get(path("pools", name=pool)).json()
    held = {r.split("/")[0] for r in _replicas(obj)}
    return obj if held == namespaces else None


def _replicas(pool: dict[str, Any]) -> list[str]:
    nodes = (pool.get("status") or {}).get("nodes") or []
    return [r for node in nodes for r in node.get("replicas", [])]
