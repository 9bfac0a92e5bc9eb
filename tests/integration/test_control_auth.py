"""Tokens, roles and namespaces against a real control plane."""

from __future__ import annotations

import os
import stat
import time

import pytest

from tests.integration.manifests import apikey, deployment, path
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration


def make_key(control: ControlProcess, namespace: str, name: str, role: str) -> str:
    with control.http() as http:
        created = http.post(path("apikeys", namespace), json=apikey(name, namespace, role))
    assert created.status_code == 201, created.text
    token: str = created.json()["status"]["token"]
    return token


def test_admin_token_file_is_private(control: ControlProcess) -> None:
    mode = stat.S_IMODE(os.stat(control.data_dir / "admin-token").st_mode)
    assert mode == 0o600


def test_a_token_is_shown_once_and_stored_hashed(control: ControlProcess) -> None:
    token = make_key(control, "team-x", "ci", "deployer")
    with control.http() as http:
        stored = http.get(path("apikeys", "team-x", "ci")).json()
    assert "token" not in stored["status"]
    assert stored["spec"]["tokenHash"] != token and len(stored["spec"]["tokenHash"]) == 64
    assert token not in (control.data_dir / "inferplane.db").read_bytes().decode("latin-1")


def test_a_deployer_is_confined_to_its_namespace(control: ControlProcess) -> None:
    token = make_key(control, "team-a", "deployer", "deployer")
    with control.http(token) as http:
        mine = http.post(path("deployments", "team-a"), json=deployment("chat", "team-a"))
        assert mine.status_code == 201, mine.text
        for response in (
            http.get(path("deployments", "team-b")),
            http.post(path("deployments", "team-b"), json=deployment("chat", "team-b")),
            http.delete(path("deployments", "team-b", "chat")),
        ):
            assert response.status_code == 403
            body = response.json()
            assert body["kind"] == "Status" and body["reason"] == "Forbidden"
            assert "team-a" in body["message"]
        everywhere = http.get(path("deployments")).json()["items"]
        assert {i["metadata"]["namespace"] for i in everywhere} == {"team-a"}
        assert (
            http.post(path("clusters"), json={"metadata": {"name": "c"}, "spec": {}}).status_code
            == 403
        )
        assert http.get(path("apikeys", "team-a")).status_code == 403


def test_a_viewer_reads_but_cannot_write(control: ControlProcess) -> None:
    token = make_key(control, "team-v", "viewer", "viewer")
    with control.http() as admin:
        admin.post(path("deployments", "team-v"), json=deployment("chat", "team-v"))
    with control.http(token) as http:
        assert http.get(path("deployments", "team-v", "chat")).status_code == 200
        write = http.patch(path("deployments", "team-v", "chat"), json={"spec": {"replicas": 2}})
        assert write.status_code == 403
        assert "read-only" in write.json()["message"]


def test_missing_wrong_and_revoked_tokens_get_401(control: ControlProcess) -> None:
    token = make_key(control, "team-r", "temp", "viewer")
    with control.http("") as anonymous:
        missing = anonymous.get(path("deployments", "team-r"))
    assert missing.status_code == 401 and "missing bearer token" in missing.json()["message"]
    with control.http("ipk_wrong") as wrong:
        assert wrong.get(path("deployments", "team-r")).json()["message"] == "invalid bearer token"
    with control.http(token) as http:
        assert http.get(path("deployments", "team-r")).status_code == 200
        with control.http() as admin:
            admin.delete(path("apikeys", "team-r", "temp"))
        deadline = time.monotonic() + 5
        while http.get(path("deployments", "team-r")).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key kept working"
            time.sleep(0.05)
