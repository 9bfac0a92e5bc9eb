"""``inferplane audit`` against the fake resource API: the query it sends and how it prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import typer

from inferplane.cli import audit
from tests.unit.cli.conftest import Cli

RECORD: dict[str, Any] = {
    "time": "2030-01-02T03:04:05.123456Z",
    "requestId": "abc",
    "level": "Metadata",
    "user": "apikey:team-a/ci",
    "sourceAddress": "10.0.0.7",
    "verb": "patch",
    "kind": "deployments",
    "namespace": "team-a",
    "name": "chat",
    "subresource": "scale",
    "path": "/apis/inferplane.dev/v1/namespaces/team-a/deployments/chat/scale",
    "code": 200,
    "resourceVersion": "42",
}


@pytest.fixture
def answering(cli: Cli) -> Cli:
    def handle(request: httpx.Request) -> httpx.Response:
        cli.api.requests.append(request)
        return httpx.Response(200, json={"kind": "AuditRecordList", "items": [RECORD]})

    cli.transport = httpx.MockTransport(handle)
    return cli


def test_the_filters_go_to_the_server_and_a_table_comes_back(answering: Cli) -> None:
    result = answering(
        "audit", "--since", "2030-01-01T00:00:00Z", "--user", "apikey:team-a/ci",
        "--kind", "deploy", "-n", "team-a", "--limit", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = answering.api.requests[-1]
    assert sent.url.path == "/apis/inferplane.dev/v1/audit"
    assert dict(sent.url.params) == {
        "since": "2030-01-01T00:00:00Z",
        "user": "apikey:team-a/ci",
        "namespace": "team-a",
        "kind": "deployments",
        "limit": "5",
    }
    header, row = result.stdout.splitlines()
    assert header.split() == audit.HEADERS
    assert row.split() == [
        "2030-01-02T03:04:05Z", "apikey:team-a/ci", "10.0.0.7", "patch",
        "deployments/scale", "team-a", "chat", "200", "42",
    ]  # fmt: skip


def test_json_is_one_list(answering: Cli) -> None:
    result = answering("audit", "-o", "json")
    assert json.loads(result.stdout)["items"] == [RECORD]


def test_a_call_off_the_resource_routes_shows_its_path() -> None:
    record = RECORD | {"kind": "", "subresource": "", "path": "/apis/inferplane.dev/v1/audit"}
    assert audit.row(record)[4] == "/apis/inferplane.dev/v1/audit"


def test_since_takes_a_duration_or_a_time() -> None:
    ago = datetime.now(UTC) - audit.parse_since("1h")
    assert 3599 <= ago.total_seconds() <= 3660
    assert audit.parse_since("2030-01-01T00:00:00Z") == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(typer.BadParameter):
        audit.parse_since("last tuesday")
