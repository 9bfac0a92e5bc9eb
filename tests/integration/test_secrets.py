"""Secrets as objects, against a real control plane and gateway: values go in and never come
out (not in a response, a watch, the store, a log), only a gateway routing an Endpoint that
references them receives them, and the escalation of issue 11 is refused at admission."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane.api.meta import API_VERSION
from tests.support.control import ControlProcess
from tests.support.gateway_process import GatewayProcess, StubProcess

NS = "team-s"
VALUE = "sk-TESTSECRET-7f3a9c1e"
OTHER = "sk-OTHERSECRET-0b5d"
PREFIX = "/apis/inferplane.dev/v1"
SECRETS = f"{PREFIX}/namespaces/{NS}/secrets"
ENDPOINTS = f"{PREFIX}/namespaces/{NS}/endpoints"


def secret(name: str, data: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "Secret"}
    body["metadata"] = {"name": name}
    body["spec"] = {**({"data": data} if data is not None else {}), **spec}
    return body


def external(name: str, url: str, ref: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Endpoint",
        "metadata": {"name": name},
        "spec": {"url": url, "external": True, "apiKeySecretRef": ref},
    }


def assert_no_values(obj: Any) -> None:
    text = repr(obj)
    assert VALUE not in text and OTHER not in text and "encryptedData" not in text, text


@pytest.fixture
def started(fresh_control: ControlProcess) -> ControlProcess:
    fresh_control.start()
    return fresh_control


@pytest.fixture
def api(started: ControlProcess) -> Iterator[httpx.Client]:
    with started.http() as client:
        yield client


def test_values_are_write_only_and_sealed_at_rest(
    started: ControlProcess, api: httpx.Client
) -> None:
    created = api.post(SECRETS, json=secret("upstream", {"token": VALUE, "spare": OTHER}))
    assert created.status_code == 201, created.text
    assert created.json()["status"]["keys"] == {"spare": len(OTHER), "token": len(VALUE)}
    assert_no_values(created.json())
    assert_no_values(api.get(f"{SECRETS}/upstream").json())
    assert_no_values(api.get(SECRETS).json())
    assert_no_values(api.get(f"{PREFIX}/secrets").json())
    with api.stream("GET", SECRETS, params={"watch": "true", "timeoutSeconds": "1"}) as watch:
        assert_no_values(watch.read())

    key_file = started.data_dir / "secret-keys"
    assert key_file.stat().st_mode & 0o777 == 0o600
    for path in started.data_dir.iterdir():
        if path.is_file() and path != key_file:
            raw = path.read_bytes()
            assert VALUE.encode() not in raw and OTHER.encode() not in raw, path


def test_writes_keep_replace_and_delete_keys(api: httpx.Client) -> None:
    assert api.post(SECRETS, json=secret("s", {"a": "1", "b": "22"})).status_code == 201
    patched = api.patch(
        f"{SECRETS}/s",
        json={"spec": {"data": {"a": None, "c": "333"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"]["keys"] == {"b": 2, "c": 3}
    replaced = api.put(f"{SECRETS}/s", json=secret("s", None))
    assert replaced.json()["status"]["keys"] == {"b": 2, "c": 3}  # no data: values kept
    replaced = api.put(f"{SECRETS}/s", json=secret("s", {"d": "4444"}))
    assert replaced.json()["status"]["keys"] == {"d": 4}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"encryptedData": {"k": "v1:x:AAAA"}}, "spec.encryptedData"),
        ({"type": "inferplane.dev/engine-token", "data": {"token": "x"}}, "spec.type"),
        ({"data": {"bad key": "x"}}, "spec.data"),
    ],
)
def test_what_a_client_may_not_write_is_a_422_naming_the_field(
    api: httpx.Client, spec: dict[str, Any], field: str
) -> None:
    answer = api.post(SECRETS, json=secret("bad", **spec))
    assert answer.status_code == 422, answer.text
    assert any(c["field"].startswith(field) for c in answer.json()["details"]["causes"])
    assert VALUE not in answer.text


def test_status_of_a_secret_is_not_writable(api: httpx.Client) -> None:
    api.post(SECRETS, json=secret("st", {"k": "v"}))
    answer = api.put(f"{SECRETS}/st/status", json={**secret("st"), "status": {"keys": {}}})
    assert answer.status_code == 405


def test_the_escalation_of_issue_11_is_refused_at_admission(
    started: ControlProcess, api: httpx.Client, tmp_path: Path
) -> None:
    """A tenant's Endpoint naming the gateway's environment or files (where `inferplane up`
    keeps the fleet-admin token) never passes admission without an operator's allowlist."""
    admin = api.post(
        f"{PREFIX}/namespaces/{NS}/apikeys",
        json={"kind": "ApiKey", "metadata": {"name": "deployer"}, "spec": {"role": "deployer"}},
    )
    token = admin.json()["status"]["token"]
    with started.http(token) as tenant:
        for ref, field in (
            ({"env": "INFERPLANE_TOKEN"}, "spec.apiKeySecretRef.env"),
            ({"file": str(started.data_dir / "admin-token")}, "spec.apiKeySecretRef.file"),
        ):
            answer = tenant.post(ENDPOINTS, json=external("evil", "http://127.0.0.1:9", ref))
            assert answer.status_code == 422, answer.text
            causes = answer.json()["details"]["causes"]
            assert [c["field"] for c in causes] == [field]
        tenant.post(SECRETS, json=secret("mine", {"token": VALUE}))
        reveal = tenant.get(f"{SECRETS}/mine/reveal")
        assert reveal.status_code == 403 and VALUE not in reveal.text


def test_reveal_gives_only_the_keys_endpoints_reference(api: httpx.Client) -> None:
    api.post(SECRETS, json=secret("upstream", {"token": VALUE, "spare": OTHER}))
    assert api.get(f"{SECRETS}/upstream/reveal").json()["data"] == {}
    ref = {"name": "upstream", "key": "token"}
    assert api.post(ENDPOINTS, json=external("ext", "http://127.0.0.1:9", ref)).status_code == 201
    assert api.get(f"{SECRETS}/upstream/reveal").json()["data"] == {"token": VALUE}


def test_rotation_reseals_every_secret_with_the_new_key(started: ControlProcess) -> None:
    with started.http() as api:
        api.post(SECRETS, json=secret("upstream", {"token": VALUE}))
        api.post(
            ENDPOINTS,
            json=external("ext", "http://127.0.0.1:9", {"name": "upstream", "key": "token"}),
        )
    started.stop()
    key_file = started.data_dir / "secret-keys"
    old_id = key_file.read_text().split()[0]
    rotate = [sys.executable, "-m", "inferplane", "rotate-secret-key"]
    done = subprocess.run(
        [*rotate, "--data-dir", str(started.data_dir)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    new_id = key_file.read_text().split()[0]
    assert new_id != old_id
    started.start()
    started.stop()
    # The old key's line can go now: everything was sealed again at start.
    lines = key_file.read_text().splitlines()
    key_file.write_text("\n".join(line for line in lines if not line.startswith(old_id)) + "\n")
    started.start()
    with started.http() as api:
        assert api.get(f"{SECRETS}/upstream/reveal").json()["data"] == {"token": VALUE}


def test_a_gateway_sends_the_referenced_secret_and_no_log_holds_it(
    started: ControlProcess, tmp_path: Path
) -> None:
    stub = StubProcess(tmp_path, name="ext").start()
    try:
        with started.http() as api:
            api.post(SECRETS, json=secret("upstream", {"token": VALUE}))
            ref = {"name": "upstream", "key": "token"}
            api.post(ENDPOINTS, json=external("ext", stub.url, ref))
            api.post(
                f"{PREFIX}/namespaces/{NS}/services",
                json={
                    "kind": "Service",
                    "metadata": {"name": "svc"},
                    "spec": {"routes": [{"endpoint": "ext"}]},
                },
            )
            key = api.post(
                f"{PREFIX}/namespaces/{NS}/apikeys",
                json={"kind": "ApiKey", "metadata": {"name": "user"}, "spec": {"role": "viewer"}},
            ).json()["status"]["token"]
        gw = GatewayProcess(tmp_path, control=started.url, token=started.admin_token)
        gw.start()
        try:
            client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
            answer = _first_answer(client)
            assert answer.choices[0].message.content
            assert stub.stats()["last_auth"] == f"Bearer {VALUE}"
        finally:
            gw.stop()
    finally:
        stub.stop()
    for log in [started.log_path, gw.log_path, *tmp_path.rglob("*.log")]:
        assert VALUE not in log.read_text(errors="replace"), log
    for state in gw.state_dir.rglob("*"):
        if state.is_file():
            assert VALUE.encode() not in state.read_bytes(), state


def _first_answer(client: openai.OpenAI) -> Any:
    """The gateway learns the Secret's value a moment after the Endpoint: retry until then."""
    import time

    deadline = time.monotonic() + 15
    while True:
        try:
            return client.chat.completions.create(
                model="svc", messages=[{"role": "user", "content": "hi"}]
            )
        except openai.APIStatusError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
