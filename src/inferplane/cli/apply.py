"""``apply`` and ``diff``: make the fleet match files, or show what applying them would change."""

from __future__ import annotations

import difflib
import sys
from typing import Any

import typer

from inferplane import client as api_client
from inferplane.cli import errors, manifests, options, output, session

DRY_RUN_NOTE = " (dry run)"
DIFF_FAILED = 3
"""diff's exit code on errors; 1 means "differences found", as with kubectl and diff(1)."""
VOLATILE = ("resourceVersion",)
"""Metadata a dry run may change without the user having changed anything."""


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Objects")(apply)
    app.command(rich_help_panel="Objects")(diff)


def apply(
    ctx: typer.Context,
    filenames: options.Filenames,
    namespace: options.Namespace = None,
    recursive: options.Recursive = False,
    dry_run: options.DryRun = False,
) -> None:
    """Create objects from YAML or JSON files, or update them to match.

    Documents are applied one by one, in order. One that fails is reported with its file and
    position, counting from 0 (deploy.yaml[2]), the others still go, and the exit code is 1.

    Examples:

    inferplane apply -f deploy.yaml
    inferplane apply -f manifests/ -R --dry-run
    cat chat.yaml | inferplane apply -f -
    """
    with errors.reported(), session.of(ctx).client() as client:

        def apply_one(manifest: manifests.Manifest) -> None:
            obj = manifests.in_namespace(manifest.object, namespace)
            result = client.apply(obj, dry_run=dry_run)
            note = DRY_RUN_NOTE if dry_run else ""
            typer.echo(f"{output.ref(result.object)} {result.action}{note}")
            _show_new_token(result.object)

        ok = manifests.each(filenames, recursive=recursive, action=apply_one)
    if not ok:
        raise typer.Exit(errors.EXIT_FAILURE)


def diff(
    ctx: typer.Context,
    filenames: options.Filenames,
    namespace: options.Namespace = None,
    recursive: options.Recursive = False,
) -> None:
    """Show what apply would change: a unified diff of the live objects against the result.

    The server runs the apply as a dry run, so its defaults and admission checks show in the
    result and nothing is stored. Exit code 0: no differences; 1: differences; 3: errors.

    Examples:

    inferplane diff -f deploy.yaml
    inferplane diff -f manifests/ -R || echo "the fleet would change"
    """
    changed: list[bool] = []
    with errors.reported(DIFF_FAILED), session.of(ctx).client() as client:

        def diff_one(manifest: manifests.Manifest) -> None:
            obj = manifests.in_namespace(manifest.object, namespace)
            changed.append(_show_diff(client, obj))

        ok = manifests.each(filenames, recursive=recursive, action=diff_one)
    if not ok:
        raise typer.Exit(DIFF_FAILED)
    if any(changed):
        raise typer.Exit(1)


def _show_new_token(obj: dict[str, Any]) -> None:
    """An ApiKey created without a hash answers its token once: the user must see it now."""
    token = (obj.get("status") or {}).get("token")
    if token:
        typer.echo(f"  token: {token}  (shown only this once; store it now)")


def _show_diff(client: api_client.Client, obj: dict[str, Any]) -> bool:
    """Print the diff for one object; True when applying it would change anything."""
    applied = client.apply(obj, dry_run=True)
    result = applied.object
    live = None if applied.action == "created" else _live(client, result)
    ref = output.ref(result)
    before = output.to_yaml([_comparable(live)]) if live else ""
    after = output.to_yaml([_comparable(result)])
    lines = list(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"live/{ref}",
            tofile=f"applied/{ref}",
        )
    )
    colour = sys.stdout.isatty()
    for line in lines:
        typer.echo(_coloured(line) if colour else line, nl=False)
    return bool(lines)


def _live(client: api_client.Client, obj: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return client.get(
            obj["kind"], output.name_of(obj), namespace=output.namespace_of(obj) or None
        )
    except api_client.NotFound:
        return None


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in VOLATILE}
    return {**obj, "metadata": metadata}


def _coloured(line: str) -> str:
    if line.startswith(("+++", "---")):
        return typer.style(line, bold=True)
    if line.startswith("+"):
        return typer.style(line, fg="green")
    if line.startswith("-"):
        return typer.style(line, fg="red")
    if line.startswith("@@"):
        return typer.style(line, fg="cyan")
    return line
