"""``apikey create|list|revoke`` against the fake resource API, and their refusals of bad input.

The real token round trip (create, use as a bearer token, revoke, 401) is in
tests/e2e/test_cli_apikey.py against a real control plane.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml

from inferplane.cli import apikey
from tests.unit.cli.conftest import Cli

HASH = "ab" * 32


def key(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    body = {"role": "viewer", "tokenHash": HASH, "tokenPrefix": "ipk_abcdefgh", **spec}
    return {"kind": "ApiKey", "metadata": {"name": name, "namespace": namespace}, "spec": body}


@pytest.fixture
def issuing(cli: Cli) -> Cli:
    """The fake server answering a create as the control plane does: a token, once."""
    original = cli.api.handle

    def hand_out_token(request: httpx.Request) -> httpx.Response:
        response = original(request)
        if request.method == "POST" and response.status_code == 201:
            created = response.json()
            created["spec"] |= {"tokenHash": HASH, "tokenPrefix": "ipk_secret12"}
            created["status"]["token"] = "ipk_secret1234"
            return httpx.Response(201, json=created)
        return response

    cli.transport = httpx.MockTransport(hand_out_token)
    return cli


def test_create_sends_the_limits_and_prints_the_token_once(issuing: Cli) -> None:
    result = issuing(
        "apikey", "create", "ci-bot", "--role", "deployer", "--rpm", "60", "--tpm", "10000",
        "--budget-cost", "5", "--expires-in", "30d", "--description", "CI",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = json.loads(issuing.api.requests[-1].content)
    assert "tokenHash" not in sent["spec"]
    assert sent["spec"]["rateLimits"] == {"requestsPerMinute": 60, "tokensPerMinute": 10000}
    assert sent["spec"]["budget"] == {"cost": 5.0, "period": "day"}
    expires = datetime.fromisoformat(sent["spec"]["expiresAt"])
    assert 29.9 < (expires - datetime.now(UTC)).total_seconds() / 86400 <= 30
    assert result.stdout.count("ipk_secret1234") == 2  # the token, and in the curl example
    assert "will not be shown again" in result.stdout
    assert 'curl $GATEWAY/v1/models -H "Authorization: Bearer ipk_secret1234"' in result.stdout
    assert "60 requests/min, 10k tokens/min" in result.stdout and "$5.00/day" in result.stdout
    assert HASH not in result.stdout


def test_create_of_a_join_key_bound_to_a_cluster(issuing: Cli) -> None:
    result = issuing(
        "apikey", "create", "join-eu", "-n", "inferplane-system", "--role", "join",
        "--cluster", "eu-1", "--expires-in", "1h",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = json.loads(issuing.api.requests[-1].content)
    assert (sent["spec"]["role"], sent["spec"]["cluster"]) == ("join", "eu-1")
    assert sent["metadata"]["namespace"] == "inferplane-system"


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_create_for_scripts_prints_the_object_with_its_token(issuing: Cli, fmt: str) -> None:
    result = issuing("apikey", "create", "ci", "-n", "team-a", "-o", fmt)
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert created["status"]["token"] == "ipk_secret1234"
    assert created["metadata"]["namespace"] == "team-a"
    assert "tokenHash" not in created["spec"]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--rpm", "lots"], "--rpm"),
        (["--rpm", "0"], "--rpm"),
        (["--role", "owner"], "'owner' is not one of"),
        (["--expires-in", "soon"], "'soon' is not a duration"),
        (["--expires-in", "0h"], "not a positive duration"),
        (["--budget-cost", "0"], "not a cost above 0"),
        (["--budget-period", "week"], "--budget-period"),
    ],
)
def test_bad_flags_are_refused_before_anything_is_sent(
    cli: Cli, args: list[str], complaint: str
) -> None:
    result = cli("apikey", "create", "ci", *args)
    assert result.exit_code == 2
    assert complaint in result.output
    assert cli.api.requests == []


def test_a_period_without_a_cap_is_an_error(cli: Cli) -> None:
    result = cli("apikey", "create", "ci", "--budget-period", "month")
    assert result.exit_code == 1
    assert result.stderr == "error: --budget-period needs --budget-cost or --budget-tokens\n"


def test_create_of_a_taken_name_says_so(issuing: Cli) -> None:
    issuing.api.add(key("ci"))
    result = issuing("apikey", "create", "ci")
    assert result.exit_code == 1
    assert result.stderr == 'error: apikeys "ci" already exists\n'


def test_list_shows_limits_and_usage_and_never_the_hash(cli: Cli) -> None:
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    budget = {"cost": 5.0, "period": "day"}
    fresh = key("ci-bot", rateLimits={"requestsPerMinute": 60}, budget=budget)
    fresh["status"] = {"tokensUsed": 12345, "costUsed": 1.5, "periodStart": today}
    stale = key("old", budget={"tokens": 1000000, "period": "day"})
    stale["status"] = {"tokensUsed": 999, "costUsed": 0.5, "periodStart": "2001-01-01T00:00:00Z"}
    cli.api.add(fresh)
    cli.api.add(stale)
    lines = cli("apikey", "list").stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "ROLE", "PREFIX", "RPM", "TPM", "BUDGET", "USED", "LAST-USED", "AGE",
    ]  # fmt: skip
    assert lines[1].split()[:9] == [
        "ci-bot", "viewer", "ipk_abcdefgh", "60", "unlimited", "$5.00/day", "$1.50,", "12.3k",
        "tokens",
    ]  # fmt: skip
    used = ["1M", "tokens/day", "$0.00,", "0", "tokens", "never"]
    assert lines[2].split()[5:11] == used, "a past period used nothing"
    for fmt in ("table", "wide", "json", "yaml"):
        assert HASH not in cli("apikey", "list", "-o", fmt).stdout


def test_list_across_namespaces_names_them(cli: Cli) -> None:
    cli.api.add(key("a", "team-a"))
    cli.api.add(key("b", "team-b"))
    lines = cli("apikey", "list", "-A").stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["NAMESPACE", "NAME"],
        ["team-a", "a"],
        ["team-b", "b"],
    ]
    listed = json.loads(cli("apikey", "list", "-A", "-o", "json").stdout)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["a", "b"]


def test_list_of_an_empty_namespace_says_so(cli: Cli) -> None:
    result = cli("apikey", "list", "-n", "team-z")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == "No API keys found in team-z namespace.\n"


def test_revoke_deletes_the_key(cli: Cli) -> None:
    cli.api.add(key("ci-bot", "team-a"))
    result = cli("apikey", "revoke", "ci-bot", "-n", "team-a")
    assert result.exit_code == 0 and result.stdout == "apikey/ci-bot revoked\n"
    assert cli.api.find("ApiKey", "ci-bot", "team-a") is None


def test_revoke_asks_a_person_first(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apikey, "interactive", lambda: True)
    cli.api.add(key("ci-bot"))
    declined = cli("apikey", "revoke", "ci-bot", input="n\n")
    assert declined.exit_code == 1
    assert "Revoke apikey default/ci-bot (role viewer, token ipk_abcdefgh...)?" in declined.stdout
    assert cli.api.find("ApiKey", "ci-bot") is not None
    assert cli("apikey", "revoke", "ci-bot", input="y\n").exit_code == 0
    assert cli.api.find("ApiKey", "ci-bot") is None


def test_revoke_with_yes_does_not_ask(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apikey, "interactive", lambda: True)
    cli.api.add(key("ci-bot"))
    result = cli("apikey", "revoke", "ci-bot", "--yes")
    assert result.exit_code == 0 and "Revoke" not in result.stdout


def test_revoke_of_a_missing_key_is_a_clear_error(cli: Cli) -> None:
    result = cli("apikey", "revoke", "ghost", "-n", "team-a")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no API key 'ghost' in namespace 'team-a' "
        "(see them with: inferplane apikey list -n team-a)\n"
    )


def test_rotate_writes_a_new_hash_pinned_to_what_it_read_and_prints_the_token(cli: Cli) -> None:
    cli.api.add(key("ci-bot", "team-a", rateLimits={"requestsPerMinute": 60}))
    result = cli("apikey", "rotate", "ci-bot", "-n", "team-a", "--expires-in", "7d")
    assert result.exit_code == 0, result.output
    sent = json.loads(cli.api.requests[-1].content)
    assert sent["metadata"]["resourceVersion"], "a concurrent rotate is a conflict, not lost"
    assert set(sent["spec"]) == {"tokenHash", "tokenPrefix", "expiresAt"}
    token = result.stdout.split("token of team-a/ci-bot:\n\n  ")[1].split()[0]
    assert token.startswith("ipk_") and sent["spec"]["tokenPrefix"] == token[:12]
    assert sent["spec"]["tokenHash"] == hashlib.sha256(token.encode()).hexdigest() != HASH
    assert "apikey/ci-bot rotated (namespace team-a)" in result.stdout
    stored = cli.api.find("ApiKey", "ci-bot", "team-a")
    assert stored is not None and stored["spec"]["rateLimits"] == {"requestsPerMinute": 60}


def test_rotate_keeps_the_expiry_unless_told(cli: Cli) -> None:
    cli.api.add(key("ci-bot", expiresAt="2031-01-01T00:00:00Z"))
    result = cli("apikey", "rotate", "ci-bot", "-o", "yaml")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert "expiresAt" not in json.loads(cli.api.requests[-1].content)["spec"]
    assert shown["spec"]["expiresAt"] == "2031-01-01T00:00:00Z"
    assert shown["status"]["token"].startswith("ipk_") and "tokenHash" not in shown["spec"]


def test_rotate_of_a_missing_key_is_a_clear_error(cli: Cli) -> None:
    result = cli("apikey", "rotate", "ghost")
    assert result.exit_code == 1 and result.stderr.startswith("error: no API key 'ghost'")
