"""`inferplane logs replica NAME`: an engine's log, fetched through its agent."""

from __future__ import annotations

from typing import Annotated

import typer

from inferplane import lifeline
from inferplane.cli import errors, options, session

logs_app = typer.Typer(
    help="Logs of replicas' engines, relayed from their agents by the control plane.",
    no_args_is_help=True,
)


@logs_app.command("replica")
def replica(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the replica.", show_default=False)],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines as they are logged.")
    ] = False,
    tail: Annotated[
        int | None,
        typer.Option(help="Only the last N lines (then new ones, with -f).", min=0),
    ] = None,
    namespace: options.Namespace = None,
) -> None:
    """Print the log of a replica's engine (every start and restart, oldest first). The
    agent sends it through the control plane, so this works wherever the replica runs.

    Examples:

    inferplane logs replica chat-7f9c2
    inferplane logs replica chat-7f9c2 -f --tail 20 -n team-a
    """
    if follow:
        lifeline.interruptible()
    with errors.reported(), session.of(ctx).client() as client:
        chunks = client.stream_log(
            name, namespace=namespace or client.namespace, follow=follow, tail_lines=tail
        )
        try:
            for chunk in chunks:
                typer.echo(chunk, nl=False)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


def register(app: typer.Typer) -> None:
    app.add_typer(logs_app, name="logs", rich_help_panel="Objects")
