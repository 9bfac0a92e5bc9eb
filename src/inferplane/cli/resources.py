"""``get``, ``delete`` and ``scale``: reading and changing objects by kind and name."""

from __future__ import annotations

from typing import Annotated

import typer

from inferplane import client as api_client
from inferplane.api import registry
from inferplane.cli import errors, listing, manifests, options, output, session

DRY_RUN_NOTE = " (dry run)"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Objects")(get)
    app.command(rich_help_panel="Objects")(delete)
    app.command(rich_help_panel="Objects")(scale)


def get(
    ctx: typer.Context,
    kind: options.Kind,
    name: Annotated[
        str | None,
        typer.Argument(help="Name of one object; without it, every object of the kind."),
    ] = None,
    output_format: options.Output = None,
    selector: options.LabelSelector = None,
    field_selector: options.FieldSelector = None,
    namespace: options.Namespace = None,
    all_namespaces: options.AllNamespaces = False,
    watch: options.Watch = False,
) -> None:
    """List objects of a kind, or show one, as a table, YAML, JSON or names.

    Examples:

    inferplane get deployments
    inferplane get deploy chat -o yaml
    inferplane get replicas -l app=chat -A -o wide
    inferplane get clusters --field-selector status.phase=Ready -w
    """
    with errors.reported(), session.of(ctx).client() as client:
        info = registry.lookup(kind)
        scope = options.scope(info, namespace, all_namespaces, client.namespace)
        if name and all_namespaces:
            raise errors.UsageError("a name cannot be looked up across --all-namespaces")
        printer = listing.Printer(info, output_format, all_namespaces=all_namespaces)
        if name and not watch:
            printer.one(client.get(info.kind, name, namespace=scope))
            return
        by_name = f"metadata.name={name}" if name else None
        query = listing.Query(info, scope, selector, listing.and_selector(field_selector, by_name))
        listing.show(client, query, printer, watch=watch)


def delete(
    ctx: typer.Context,
    kind: Annotated[
        str | None,
        typer.Argument(
            help="Kind of the objects to delete (deployment, deploy, ...).", show_default=False
        ),
    ] = None,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Names of the objects to delete.", show_default=False),
    ] = None,
    filenames: Annotated[
        list[str] | None,
        typer.Option(
            "--filename",
            "-f",
            help="Delete the objects a YAML or JSON file (or directory, or '-') describes.",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    namespace: options.Namespace = None,
    recursive: options.Recursive = False,
    dry_run: options.DryRun = False,
) -> None:
    """Delete objects by kind and name, or those described in files.

    Deleting an object deletes everything it owns (a deployment's replicas, ...). Each object is
    deleted in turn; failures are reported and the exit code is then 1.

    Examples:

    inferplane delete deployment chat
    inferplane delete deploy chat embed -n team-a
    inferplane delete -f deploy.yaml --dry-run
    """
    with errors.reported(), session.of(ctx).client() as client:
        if filenames:
            if kind or names:
                raise errors.UsageError("give either KIND NAME... or --filename, not both")
            ok = _delete_files(client, filenames, namespace, recursive=recursive, dry_run=dry_run)
        else:
            if not kind or not names:
                raise errors.UsageError("give KIND and at least one NAME, or --filename")
            ok = _delete_names(client, kind, names, namespace, dry_run=dry_run)
    if not ok:
        raise typer.Exit(errors.EXIT_FAILURE)


def _delete_names(
    client: api_client.Client, kind: str, names: list[str], namespace: str | None, *, dry_run: bool
) -> bool:
    info = registry.lookup(kind)
    ok = True
    for name in names:
        try:
            client.delete(info.kind, name, namespace=namespace, dry_run=dry_run)
        except errors.FATAL:
            raise
        except api_client.ApiError as exc:
            errors.report(exc)
            ok = False
            continue
        _say_deleted(f"{info.singular}/{name}", dry_run=dry_run)
    return ok


def _delete_files(
    client: api_client.Client,
    filenames: list[str],
    namespace: str | None,
    *,
    recursive: bool,
    dry_run: bool,
) -> bool:
    def delete_one(manifest: manifests.Manifest) -> None:
        obj = manifests.in_namespace(manifest.object, namespace)
        client.delete(
            str(obj.get("kind", "")),
            output.name_of(obj),
            namespace=output.namespace_of(obj) or None,
            dry_run=dry_run,
        )
        _say_deleted(output.ref(obj), dry_run=dry_run)

    return manifests.each(filenames, recursive=recursive, action=delete_one)


def _say_deleted(ref: str, *, dry_run: bool) -> None:
    typer.echo(f"{ref} deleted{DRY_RUN_NOTE if dry_run else ''}")


def scale(
    ctx: typer.Context,
    kind: options.Kind,
    name: Annotated[str, typer.Argument(help="Name of the object to scale.", show_default=False)],
    replicas: Annotated[
        int,
        typer.Option(
            "--replicas", min=0, help="The number of replicas wanted.", show_default=False
        ),
    ],
    namespace: options.Namespace = None,
) -> None:
    """Set how many replicas a deployment runs.

    Sets spec.replicas through the scale subresource, as an edit of the deployment would.

    Examples:

    inferplane scale deployment chat --replicas 3
    inferplane scale deploy chat --replicas 0 -n team-a
    """
    with errors.reported(), session.of(ctx).client() as client:
        info = registry.lookup(kind)
        if not info.has_scale:
            raise errors.UsageError(f"{info.plural} cannot be scaled")
        client.set_scale(info.kind, name, replicas, namespace=namespace)
        typer.echo(f"{info.singular}/{name} scaled")
