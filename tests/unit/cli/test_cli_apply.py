"""``apply`` and ``diff`` against the fake resource API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml

from tests.unit import fake_resource_api as fake
from tests.unit.cli.conftest import Cli


def write(path: Path, *docs: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def test_apply_creates_then_reports_unchanged_then_configured(cli: Cli, tmp_path: Path) -> None:
    manifest = write(tmp_path / "deploy.yaml", fake.deployment("chat"))
    assert cli("apply", "-f", str(manifest)).stdout == "deployment/chat created\n"
    assert cli("apply", "-f", str(manifest)).stdout == "deployment/chat unchanged\n"
    write(manifest, fake.deployment("chat", replicas=3))
    result = cli("apply", "-f", str(manifest))
    assert (result.exit_code, result.stdout) == (0, "deployment/chat configured\n")
    assert cli.api.find("deploy", "chat")["spec"]["replicas"] == 3  # type: ignore[index]


def test_a_bad_document_is_named_and_the_others_still_apply(cli: Cli, tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "deploy.yaml",
        fake.deployment("a"),
        fake.deployment("bad", replicas=-1),
        fake.deployment("c"),
    )
    result = cli("apply", "-f", str(manifest))
    assert result.exit_code == 1
    assert result.stdout == "deployment/a created\ndeployment/c created\n"
    assert result.stderr == (
        f"error: {manifest}[1]: spec.replicas: Input should be greater than or equal to 0\n"
    )


def test_dry_run_says_so_and_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    manifest = write(tmp_path / "deploy.yaml", fake.deployment("chat"))
    result = cli("apply", "-f", str(manifest), "--dry-run")
    assert result.stdout == "deployment/chat created (dry run)\n"
    assert cli.api.find("deploy", "chat") is None


def test_a_directory_applies_its_manifests_in_name_order(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", fake.deployment("second"))
    (tmp_path / "a.json").write_text(json.dumps(fake.deployment("first")))
    (tmp_path / "notes.txt").write_text("not a manifest")
    nested = tmp_path / "more"
    nested.mkdir()
    write(nested / "c.yml", fake.deployment("third"))
    flat = cli("apply", "-f", str(tmp_path))
    assert flat.stdout == "deployment/first created\ndeployment/second created\n"
    deep = cli("apply", "-f", str(tmp_path), "-R")
    assert deep.stdout.splitlines()[-1] == "deployment/third created"


def test_stdin_and_namespace_flag(cli: Cli) -> None:
    result = cli("apply", "-f", "-", "-n", "team-a", input=yaml.safe_dump(fake.deployment("chat")))
    assert result.exit_code == 0
    assert cli.api.find("deploy", "chat", namespace="team-a") is not None


def test_a_namespace_flag_that_contradicts_the_manifest_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    manifest = write(tmp_path / "d.yaml", fake.deployment("chat", namespace="team-b"))
    result = cli("apply", "-f", str(manifest), "-n", "team-a")
    assert result.exit_code == 1
    assert "namespace 'team-b' but --namespace is 'team-a'" in result.stderr


def test_malformed_yaml_names_the_file_and_document(cli: Cli, tmp_path: Path) -> None:
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("kind: Deployment\n---\nmetadata: [unclosed\n")
    result = cli("apply", "-f", str(manifest))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {manifest}[1]: line ")


def test_a_missing_file_is_a_plain_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: No such file or directory\n"


def test_an_empty_directory_is_an_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("apply", "-f", str(tmp_path))
    assert (result.exit_code, result.stderr) == (1, f"error: no objects found in {tmp_path}\n")


def test_a_list_document_applies_its_items(cli: Cli, tmp_path: Path) -> None:
    listing = {"kind": "List", "items": [fake.deployment("a"), fake.deployment("b")]}
    manifest = tmp_path / "list.json"
    manifest.write_text(json.dumps(listing))
    assert cli("apply", "-f", str(manifest)).stdout == (
        "deployment/a created\ndeployment/b created\n"
    )


def test_a_refused_token_stops_at_the_first_object(cli: Cli, tmp_path: Path) -> None:
    cli.api.token = "another-token"
    manifest = write(tmp_path / "d.yaml", fake.deployment("a"), fake.deployment("b"))
    result = cli("apply", "-f", str(manifest))
    assert result.exit_code == 1
    assert result.stderr == (
        "error: missing or unknown bearer token\n"
        "  log in with: inferplane login URL --token TOKEN\n"
    )


def test_diff_exits_0_without_changes_and_1_with_them(cli: Cli, tmp_path: Path) -> None:
    cli.api.add(fake.deployment("chat", replicas=1))
    manifest = write(tmp_path / "d.yaml", fake.deployment("chat", replicas=1))
    same = cli("diff", "-f", str(manifest))
    assert (same.exit_code, same.stdout) == (0, "")
    write(manifest, fake.deployment("chat", replicas=4))
    changed = cli("diff", "-f", str(manifest))
    assert changed.exit_code == 1
    assert "-  replicas: 1\n+  replicas: 4\n" in changed.stdout
    assert changed.stdout.startswith("--- live/deployment/chat\n+++ applied/deployment/chat\n")
    assert cli.api.find("deploy", "chat")["spec"]["replicas"] == 1  # type: ignore[index]


def test_diff_of_a_new_object_shows_all_of_it_and_errors_exit_3(cli: Cli, tmp_path: Path) -> None:
    manifest = write(tmp_path / "d.yaml", fake.deployment("new"))
    result = cli("diff", "-f", str(manifest))
    assert result.exit_code == 1
    assert "+  name: new\n" in result.stdout
    write(manifest, fake.deployment("bad", replicas=-1))
    assert cli("diff", "-f", str(manifest)).exit_code == 3


def test_a_generated_api_key_token_is_shown_once(cli: Cli, tmp_path: Path) -> None:
    key = {"kind": "ApiKey", "metadata": {"name": "ci"}, "spec": {"role": "deployer"}}
    original = cli.api.handle

    def hand_out_token(request: httpx.Request) -> httpx.Response:
        response = original(request)
        if request.method == "POST":
            created = response.json()
            created["status"]["token"] = "ipk_secret"
            return httpx.Response(201, json=created)
        return response

    cli.transport = httpx.MockTransport(hand_out_token)
    result = cli("apply", "-f", str(write(tmp_path / "key.yaml", key)))
    assert result.stdout == (
        "apikey/ci created\n  token: ipk_secret  (shown only this once; store it now)\n"
    )


def test_document_indexes_count_empty_documents(cli: Cli, tmp_path: Path) -> None:
    manifest = tmp_path / "gaps.yaml"
    bad = write(tmp_path / "bad.yaml", fake.deployment("bad", replicas=-1)).read_text()
    manifest.write_text("---\n---\n" + bad)
    result = cli("apply", "-f", str(manifest))
    assert result.exit_code == 1
    assert f"{manifest}[1]: spec.replicas" in result.stderr, "the empty document 0 is counted"
