"""The data path is closed: every replica's engine requires a token of its own, which only the
agent of its cluster and the gateways receive (issue 11, item 4).

Against `inferplane up` (control plane, two planes whose agents run as their clusters, the
gateway as a gateway, two reference engines): an engine refuses a request without its token or
with the other replica's; the openai client gets its answer through the gateway; a tenant can
neither reveal a token nor make a gateway send one anywhere; an agent receives only its own
cluster's; a deleted replica's token goes with it; and no token is in any log, state file,
store file or API output of the run."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane import client as api_client
from inferplane.agent.runtime import base, process, processes
from inferplane.api.meta import API_VERSION
from tests.support import up_process
from tests.support.engine_process import wait_for
from tests.support.engine_tokens import SYSTEM, engine_token
from tests.support.up_process import UpProcess

pytestmark = pytest.mark.integration

PREFIX = "/apis/inferplane.dev/v1"
SEEN: set[str] = set()
"""Every engine token a test held: none may show up where the last test looks."""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    running = UpProcess(tmp_path_factory.mktemp("tokens"))
    running.start()
    pids: set[int] = set()
    try:
        running.endpoint()
        pids = running.descendants()
        yield running
    finally:
        running.kill_all(pids | (running.descendants() if running.process else set()))


@pytest.fixture
def admin(up: UpProcess) -> Iterator[api_client.Client]:
    with up.client() as client:
        yield client


def ready(admin: api_client.Client) -> list[dict[str, Any]]:
    found = up_process.ready_replicas(admin)
    assert len(found) == 2, found
    return found


def token_of(admin: api_client.Client, replica: dict[str, Any]) -> str:
    token = engine_token(admin, replica)
    SEEN.add(token)
    return token


def complete(url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {"model": "demo", "prompt": "The Python language", "max_tokens": 2}
    return httpx.post(f"{url}/v1/completions", json=body, headers=headers, timeout=60)


@pytest.mark.timeout(300)
def test_an_engine_answers_only_with_its_own_token(admin: api_client.Client) -> None:
    first, second = ready(admin)
    tokens = [token_of(admin, first), token_of(admin, second)]
    assert tokens[0] != tokens[1]
    for replica, own, other in ((first, tokens[0], tokens[1]), (second, tokens[1], tokens[0])):
        url = replica["status"]["url"].rstrip("/")
        assert replica["status"]["engineTokenSecret"] == f"engine-{replica['metadata']['uid']}"
        for refused in (None, other, own + "x"):
            answer = complete(url, refused)
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["code"] == "invalid_api_key"
        assert complete(url, own).status_code == 200
        # vLLM's convention: the agent's probes and scrapes need no token.
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200
    endpoints = admin.list("Endpoint", namespace="default").items
    named = {e["spec"]["replica"]: e["spec"].get("engineTokenSecret") for e in endpoints}
    assert named == {
        r["metadata"]["name"]: r["status"]["engineTokenSecret"] for r in (first, second)
    }


@pytest.mark.timeout(300)
def test_the_gateway_sends_each_engine_its_token(up: UpProcess) -> None:
    key = up.api_key()
    served = set()
    with openai.OpenAI(base_url=f"{up.endpoint()}/v1", api_key=key, max_retries=0) as client:
        for _ in range(6):
            raw = client.completions.with_raw_response.create(
                model="demo", prompt="The Python language", max_tokens=2
            )
            # Answered by the engine (sampled text may be a partial UTF-8 character: '').
            completion = raw.parse()
            assert completion.usage is not None and completion.usage.completion_tokens == 2
            served.add(raw.headers["x-inferplane-endpoint"])
    assert served, "every answer names the endpoint that gave it"


@pytest.mark.timeout(300)
def test_a_tenant_can_neither_reveal_nor_reference_an_engine_token(
    up: UpProcess, admin: api_client.Client
) -> None:
    replica = ready(admin)[0]
    secret = replica["status"]["engineTokenSecret"]
    key = {"kind": "ApiKey", "metadata": {"name": "tenant", "namespace": "default"}}
    made = admin.create({**key, "spec": {"role": "deployer"}})
    headers = {"Authorization": "Bearer " + made["status"]["token"]}
    with httpx.Client(base_url=up.url, headers=headers) as tenant:
        revealed = tenant.get(f"{PREFIX}/namespaces/{SYSTEM}/secrets/{secret}/reveal")
        assert revealed.status_code == 403, revealed.text
        ref = {"name": secret, "key": "token"}
        for spec, field in (
            ({"external": True, "apiKeySecretRef": ref}, "spec.apiKeySecretRef.name"),
            ({"external": True, "engineTokenSecret": secret}, "spec.engineTokenSecret"),
        ):
            body = {"apiVersion": API_VERSION, "kind": "Endpoint", "metadata": {"name": "evil"},
                    "spec": {"url": "http://127.0.0.1:9", **spec}}  # fmt: skip
            answer = tenant.post(f"{PREFIX}/namespaces/default/endpoints", json=body)
            assert answer.status_code == 422, answer.text
            assert [c["field"] for c in answer.json()["details"]["causes"]] == [field]


@pytest.mark.timeout(300)
def test_an_agent_receives_only_its_own_clusters_tokens(
    up: UpProcess, admin: api_client.Client
) -> None:
    for replica in ready(admin):
        cluster = replica["spec"]["cluster"]
        other = "local-b" if cluster == "local-a" else "local-a"
        path = f"{PREFIX}/namespaces/{SYSTEM}/secrets/{replica['status']['engineTokenSecret']}"
        for agent, allowed in ((cluster, True), (other, False)):
            credential = up.data_dir / "agents" / agent / "credential.json"
            token = json.loads(credential.read_text())["token"]
            answer = httpx.get(
                f"{up.url}{path}/reveal", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            assert answer.status_code == (200 if allowed else 403), answer.text
            if allowed:
                SEEN.add(answer.json()["data"]["token"])


@pytest.mark.timeout(300)
def test_a_deleted_replica_takes_its_token_with_it(up: UpProcess, admin: api_client.Client) -> None:
    gone = ready(admin)[0]
    secret = gone["status"]["engineTokenSecret"]
    token_of(admin, gone)
    admin.delete("Replica", gone["metadata"]["name"], namespace="default")

    def removed() -> bool:
        names = {s["metadata"]["name"] for s in admin.list("Secret", namespace=SYSTEM).items}
        return secret not in names

    wait_for(removed, timeout=120, what="the deleted replica's engine token removed")

    def replaced() -> bool:
        names = {r["metadata"]["name"] for r in up_process.ready_replicas(admin)}
        return len(names) == 2 and gone["metadata"]["name"] not in names

    wait_for(replaced, timeout=180, what="a replacement replica Ready")
    for replica in ready(admin):
        token = token_of(admin, replica)
        assert complete(replica["status"]["url"].rstrip("/"), token).status_code == 200
    assert up_process.complete(up.endpoint(), up.api_key())  # the gateway has the new one


@pytest.mark.timeout(300)
def test_no_token_is_in_a_log_a_file_or_any_output(up: UpProcess, admin: api_client.Client) -> None:
    for replica in ready(admin):
        token_of(admin, replica)
    outputs = [repr(admin.list(kind).items) for kind in ("Replica", "Endpoint", "Secret", "Event")]
    outputs.append(repr(admin.list("Replica", namespace="default").items[0]))
    with httpx.Client(base_url=up.url, headers=admin_headers(up)) as http:
        for plural in ("replicas", "endpoints", "secrets", "events"):
            params = {"watch": "true", "timeoutSeconds": "1"}
            with http.stream("GET", f"{PREFIX}/{plural}", params=params) as watch:
                outputs.append(watch.read().decode())
    for text in outputs:
        for token in SEEN:
            assert token not in text
    assert up.interrupt() == 0, up.output()
    assert SEEN
    for token in SEEN:
        assert token not in up.output()
    for path in up.root.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            for token in SEEN:
                assert token.encode() not in raw, path


def admin_headers(up: UpProcess) -> dict[str, str]:
    return {"Authorization": "Bearer " + (up.data_dir / "admin-token").read_text().strip()}


def test_an_adopted_engine_is_not_restarted_until_the_agent_hands_back_its_token(
    tmp_path: Path,
) -> None:
    """The state file keeps the launch without its token: an engine found dead by the next
    agent waits for the token rather than start open."""
    seen = tmp_path / "seen"
    script = f"import os, time; open({str(seen)!r}, 'w').write(os.environ['KEY']); time.sleep(60)"
    launch = base.Launch(
        name="ns/r", command=(sys.executable, "-c", script), env={"KEY": base.TOKEN},
        token="tok-adopted",
    )  # fmt: skip
    now = [0.0]
    settings = process.ProcessSettings(data_dir=tmp_path / "agent")

    def runtime() -> process.ProcessRuntime:
        return process.ProcessRuntime(
            settings, clock=lambda: now[0], probe=lambda url: "unreachable"
        )

    def started() -> bool:
        return seen.exists() and seen.read_text() == "tok-adopted"

    first = runtime()
    first.start(launch)
    wait_for(started, timeout=30, what="the engine's start, with its token")
    assert b"tok-adopted" not in first.state_path.read_bytes()
    first.close(grace=5, stop_engines=False)  # an agent that leaves its engines running
    pid = json.loads(first.state_path.read_text())["engines"]["ns/r"]["pid"]
    os.kill(pid, signal.SIGKILL)  # and the engine dies before the next agent comes
    wait_for(lambda: not processes.is_running(pid, None), timeout=30, what="the engine gone")
    first.sync()  # reaps its child (the clock stands still: no restart is due)
    left = first.status("ns/r")
    assert left is not None and left.pid is None
    seen.unlink()

    second = runtime()
    assert second.adopt() == ["ns/r"]
    for _ in range(3):
        second.sync()
        now[0] += 120.0  # past any restart backoff
    status = second.status("ns/r")
    assert status is not None and status.pid is None
    assert status.message == process.WAITING_FOR_TOKEN
    assert not seen.exists()
    second.start(launch)  # what the agent's recheck does: the same launch, with its token
    second.sync()
    wait_for(started, timeout=30, what="the restart, with its token")
    second.close(grace=5, stop_engines=True)
