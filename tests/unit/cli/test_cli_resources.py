"""``describe``, ``delete``, ``scale`` and ``events``."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit import fake_resource_api as fake
from tests.unit.cli.conftest import Cli


def event(name: str, reason: str, involved: str, last: str, **spec: object) -> dict[str, object]:
    return {
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "involvedObject": {"kind": "Deployment", "name": involved},
            "reason": reason,
            "type": "Normal",
            "message": f"{reason} happened",
            "lastTimestamp": last,
            **spec,
        },
    }


def test_describe_shows_metadata_spec_conditions_and_own_events(cli: Cli) -> None:
    chat = fake.deployment("chat", labels={"app": "chat", "tier": "prod"})
    chat["status"] = {
        "phase": "Ready",
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady"}],
    }
    cli.api.add(chat)
    cli.api.objects[("Deployment", "default", "chat")]["status"] = chat["status"]
    cli.api.add(event("e2", "ScaledUp", "chat", "2024-01-01T00:05:00Z"))
    cli.api.add(event("e1", "Created", "chat", "2024-01-01T00:01:00Z"))
    cli.api.add(event("e3", "Other", "other", "2024-01-01T00:02:00Z"))
    result = cli("describe", "deploy", "chat")
    assert result.exit_code == 0
    text = result.stdout
    assert "Name:               chat\n" in text
    assert "Labels:             app=chat\n                    tier=prod\n" in text
    assert "Spec:\n  model: chat-model\n  replicas: 1\n" in text
    assert "Status:\n  phase: Ready\n" in text
    assert "AllReplicasReady" in text
    events = text.split("Events:\n")[1].splitlines()
    assert [line.split()[2] for line in events[1:]] == ["Created", "ScaledUp"]
    selector = cli.api.requests[-1].url.params["fieldSelector"]
    assert selector == "spec.involvedObject.kind=Deployment,spec.involvedObject.name=chat"


def test_describe_of_a_missing_object_is_an_error(cli: Cli) -> None:
    result = cli("describe", "deploy", "ghost")
    assert (result.exit_code, result.stderr) == (1, 'error: deployments "ghost" not found\n')


def test_delete_by_names_goes_on_past_a_missing_one(cli: Cli) -> None:
    cli.api.add(fake.deployment("a"))
    cli.api.add(fake.deployment("b"))
    result = cli("delete", "deploy", "a", "ghost", "b")
    assert result.exit_code == 1
    assert result.stdout == "deployment/a deleted\ndeployment/b deleted\n"
    assert result.stderr == 'error: deployments "ghost" not found\n'
    assert cli.api.objects == {}


def test_delete_from_a_file_with_dry_run(cli: Cli, tmp_path: Path) -> None:
    cli.api.add(fake.deployment("chat"))
    manifest = tmp_path / "d.yaml"
    manifest.write_text(yaml.safe_dump(fake.deployment("chat")))
    result = cli("delete", "-f", str(manifest), "--dry-run")
    assert result.stdout == "deployment/chat deleted (dry run)\n"
    assert cli.api.find("deploy", "chat") is not None
    assert cli("delete", "-f", str(manifest)).exit_code == 0
    assert cli.api.find("deploy", "chat") is None


def test_delete_needs_names_or_a_file_not_both(cli: Cli, tmp_path: Path) -> None:
    assert cli("delete", "deploy").stderr == (
        "error: give KIND and at least one NAME, or --filename\n"
    )
    both = cli("delete", "deploy", "x", "-f", str(tmp_path))
    assert both.stderr == "error: give either KIND NAME... or --filename, not both\n"


def test_scale_sets_replicas(cli: Cli) -> None:
    cli.api.add(fake.deployment("chat", replicas=1))
    result = cli("scale", "deployment", "chat", "--replicas", "3")
    assert (result.exit_code, result.stdout) == (0, "deployment/chat scaled\n")
    assert cli.api.find("deploy", "chat")["spec"]["replicas"] == 3  # type: ignore[index]


def test_scale_refuses_kinds_without_replicas(cli: Cli) -> None:
    result = cli("scale", "svc", "chat", "--replicas", "3")
    assert (result.exit_code, result.stderr) == (1, "error: services cannot be scaled\n")
    assert cli("scale", "deploy", "chat", "--replicas", "-1").exit_code == 2


def test_events_oldest_first_and_for_one_object(cli: Cli) -> None:
    cli.api.add(event("late", "ScaledUp", "chat", "2024-01-01T00:05:00Z"))
    cli.api.add(event("early", "Created", "chat", "2024-01-01T00:01:00Z"))
    cli.api.add(event("other", "Pulled", "embed", "2024-01-01T00:03:00Z"))
    lines = cli("events").stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [line.split()[2] for line in lines[1:]] == ["Created", "Pulled", "ScaledUp"]
    mine = cli("events", "--for", "deploy/chat").stdout.splitlines()
    assert [line.split()[3] for line in mine[1:]] == ["deployment/chat", "deployment/chat"]
    bad = cli("events", "--for", "chat")
    assert bad.stderr == "error: --for takes KIND/NAME, e.g. deploy/chat, not 'chat'\n"
