"""``events``: what happened recently, oldest first, optionally about one object."""

from __future__ import annotations

from typing import Annotated

import typer

from inferplane.api import registry
from inferplane.cli import columns, errors, listing, options, session


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Objects")(events)


def events(
    ctx: typer.Context,
    namespace: options.Namespace = None,
    all_namespaces: options.AllNamespaces = False,
    for_object: Annotated[
        str | None,
        typer.Option(
            "--for",
            help="Only events about this object, as KIND/NAME (e.g. deploy/chat).",
            metavar="KIND/NAME",
            show_default=False,
        ),
    ] = None,
    output_format: options.Output = None,
    watch: options.Watch = False,
) -> None:
    """List events, oldest first: what controllers and agents did and why.

    Examples:

    inferplane events
    inferplane events --for deployment/chat -w
    inferplane events -A -o wide
    """
    with errors.reported(), session.of(ctx).client() as client:
        info = registry.lookup("Event")
        scope = options.scope(info, namespace, all_namespaces, client.namespace)
        query = listing.Query(info, scope, field_selector=involving(for_object))
        printer = listing.Printer(info, output_format, all_namespaces=all_namespaces)
        listing.show(client, query, printer, watch=watch, order=columns.by_last_seen)


def involving(ref: str | None) -> str | None:
    """The field selector for ``--for KIND/NAME``, with the kind's short names resolved."""
    if not ref:
        return None
    kind, sep, name = ref.partition("/")
    if not sep or not kind or not name:
        raise errors.UsageError(f"--for takes KIND/NAME, e.g. deploy/chat, not {ref!r}")
    info = registry.lookup(kind)
    return f"spec.involvedObject.kind={info.kind},spec.involvedObject.name={name}"
