"""``get``: tables, formats, namespaces, selectors and watch."""

from __future__ import annotations

import json

import httpx
import yaml

from tests.unit import fake_resource_api as fake
from tests.unit.cli.conftest import Cli


def test_a_table_like_kubectl(cli: Cli) -> None:
    cli.api.add(fake.deployment("chat", replicas=2))
    cli.api.add(fake.deployment("embeddings-large", replicas=1))
    lines = cli("get", "deploy").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "REPLICAS", "MODEL", "AGE"]
    assert lines[1].split()[:4] == ["chat", "0/2", "0", "chat-model"]
    assert lines[2].startswith("embeddings-large   0/1")
    assert all(line == line.rstrip() for line in lines)


def test_wide_adds_columns_and_all_namespaces_adds_namespace(cli: Cli) -> None:
    cli.api.add(fake.deployment("chat", namespace="team-a"))
    cli.api.add(fake.deployment("chat", namespace="team-b"))
    lines = cli("get", "deployments", "-A", "-o", "wide").stdout.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert "ENGINE" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["team-a", "team-b"]


def test_namespace_flag_and_default_namespace(cli: Cli) -> None:
    cli.api.add(fake.deployment("here", namespace="team-a"))
    assert "here" in cli("get", "deploy", "-n", "team-a").stdout
    empty = cli("get", "deploy")
    assert (empty.exit_code, empty.stdout) == (0, "")
    assert empty.stderr == "No resources found in default namespace.\n"


def test_fleet_scoped_kinds_list_without_namespace(cli: Cli) -> None:
    cli.api.add({"kind": "Cluster", "metadata": {"name": "eu-1"}, "spec": {"region": "eu"}})
    lines = cli("get", "clusters", "-n", "ignored").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "REGION", "RUNTIME", "AGE"]
    assert lines[1].split()[:3] == ["eu-1", "<none>", "eu"]
    assert cli.api.requests[-1].url.path == "/apis/inferplane.dev/v1/clusters"


def test_yaml_json_and_name_formats(cli: Cli) -> None:
    cli.api.add(fake.deployment("a"))
    cli.api.add(fake.deployment("b"))
    docs = list(yaml.safe_load_all(cli("get", "deploy", "-o", "yaml").stdout))
    assert [d["metadata"]["name"] for d in docs] == ["a", "b"]
    listing = json.loads(cli("get", "deploy", "-o", "json").stdout)
    assert (listing["kind"], len(listing["items"])) == ("List", 2)
    one = json.loads(cli("get", "deploy", "a", "-o", "json").stdout)
    assert one["metadata"]["name"] == "a"
    assert cli("get", "deploy", "-o", "name").stdout == "deployment/a\ndeployment/b\n"


def test_selectors_are_passed_to_the_server(cli: Cli) -> None:
    cli.api.add(fake.deployment("a", labels={"app": "chat"}))
    cli.api.add(fake.deployment("b"))
    result = cli("get", "deploy", "-l", "app=chat", "--field-selector", "metadata.name=a")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["a"]
    params = cli.api.requests[-1].url.params
    assert (params["labelSelector"], params["fieldSelector"]) == ("app=chat", "metadata.name=a")


def test_unknown_names_and_kinds_are_plain_errors(cli: Cli) -> None:
    missing = cli("get", "deploy", "nope")
    assert (missing.exit_code, missing.stderr) == (1, 'error: deployments "nope" not found\n')
    unknown = cli("get", "gizmos")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: unknown kind 'gizmos'; known kinds: ApiKey")


def test_contradictory_flags_are_usage_errors(cli: Cli) -> None:
    both = cli("get", "deploy", "-n", "a", "-A")
    assert (both.exit_code, both.stderr) == (
        1,
        "error: give either --namespace or --all-namespaces, not both\n",
    )
    assert cli("get", "deploy", "chat", "-A").exit_code == 1
    assert cli("get", "deploy", "-o", "toml").exit_code == 2


def test_watch_prints_the_listing_then_each_change_aligned(cli: Cli) -> None:
    live = cli.api.add(fake.deployment("chat", replicas=1))
    changed = fake.merge_patch(live, {"spec": {"replicas": 5}})
    cli.api.watch_lines = [
        {"type": "MODIFIED", "object": changed},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "999"}}},
    ]
    lines = cli("get", "deploy", "-w").stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["NAME", "READY"],
        ["chat", "0/1"],
        ["chat", "0/5"],
    ]
    assert len({line.index(line.split()[1]) for line in lines}) == 1
    first, again = (r.url.params for r in cli.api.requests if r.url.params.get("watch"))
    assert (first["watch"], first["resourceVersion"]) == ("true", str(cli.api.version))
    assert again["resourceVersion"] == "999", "the ended stream is resumed from its bookmark"


def test_watch_of_one_name_selects_it_by_field(cli: Cli) -> None:
    cli.api.add(fake.deployment("chat"))
    result = cli("get", "deploy", "chat", "-w", "-o", "name")
    assert result.stdout == "deployment/chat\n"
    assert cli.api.requests[-1].url.params["fieldSelector"] == "metadata.name=chat"


def test_an_unreachable_server_is_named(cli: Cli) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    cli.transport = httpx.MockTransport(refuse)
    result = cli("get", "deploy")
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: cannot reach the control plane at {fake.SERVER}: connection refused\n"
        "  is it running? start one on this machine with: inferplane up\n",
    )
