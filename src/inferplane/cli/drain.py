"""``cordon``, ``uncordon`` and ``drain``: taking a cluster out of service, and back.

Cordon sets the Cluster's spec.cordoned: the scheduler places nothing new there, running
replicas stay. Drain cordons and annotates the Cluster `inferplane.dev/drain: "true"`; the
control plane then moves every replica off it make-before-break (a replacement starts
elsewhere and turns Ready before the old replica drains and stops). The move lives in the
control plane, so it goes on if this command is stopped; the command only watches it.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from inferplane import client as api_client
from inferplane.api import wellknown
from inferplane.cli import errors, session

POLL_SECONDS = 0.5


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Fleet")(cordon)
    app.command(rich_help_panel="Fleet")(uncordon)
    app.command(rich_help_panel="Fleet")(drain)


ClusterName = Annotated[str, typer.Argument(help="Name of the Cluster.", show_default=False)]


def cordon(ctx: typer.Context, cluster: ClusterName) -> None:
    """Stop placing new replicas on a cluster; the replicas running there stay.

    Examples:

    inferplane cordon gpu-east-1
    """
    with errors.reported(), session.of(ctx).client() as client:
        client.patch("Cluster", cluster, {"spec": {"cordoned": True}})
    typer.echo(f"cluster/{cluster} cordoned")


def uncordon(ctx: typer.Context, cluster: ClusterName) -> None:
    """Place replicas on a cluster again, and stop draining it (moves under way finish).

    Examples:

    inferplane uncordon gpu-east-1
    """
    patch = {
        "metadata": {"annotations": {wellknown.DRAIN_ANNOTATION: None}},
        "spec": {"cordoned": False},
    }
    with errors.reported(), session.of(ctx).client() as client:
        client.patch("Cluster", cluster, patch)
    typer.echo(f"cluster/{cluster} uncordoned")


def drain(
    ctx: typer.Context,
    cluster: ClusterName,
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="Start the drain and return; the control plane does it."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds to wait for the last replica to move; 0 waits as long as it takes.",
        ),
    ] = 0,
) -> None:
    """Cordon a cluster and move every replica off it, make-before-break.

    For each replica a replacement starts on another cluster; once it is Ready the old one
    drains (no new requests, in-flight ones finish) and stops. Shows progress until no
    replica is left; stopping the command does not stop the drain (undo with uncordon).

    Examples:

    inferplane drain gpu-east-1
    inferplane drain gpu-east-1 --no-wait
    """
    patch = {
        "metadata": {"annotations": {wellknown.DRAIN_ANNOTATION: "true"}},
        "spec": {"cordoned": True},
    }
    with errors.reported(), session.of(ctx).client() as client:
        client.patch("Cluster", cluster, patch)
        on = _replicas_on(client, cluster)
        typer.echo(f"cluster/{cluster} cordoned; draining {len(on)} replicas")
        if no_wait or not on:
            if not on:
                typer.echo(f"cluster/{cluster} drained")
            return
        left = _follow(client, cluster, on, timeout=timeout)
    if left:
        names = ", ".join(sorted(left))
        typer.echo(
            f"error: {len(left)} replicas still on cluster/{cluster} after {timeout:g}s: {names}"
            " (the drain goes on in the control plane)",
            err=True,
        )
        raise typer.Exit(errors.EXIT_FAILURE)
    typer.echo(f"cluster/{cluster} drained")


def _replicas_on(client: api_client.Client, cluster: str) -> set[str]:
    """namespace/name of every replica bound to the cluster, in every namespace."""
    listed = client.list("Replica", field_selector=f"spec.cluster={cluster}").items
    return {_name(r) for r in listed}


def _follow(
    client: api_client.Client, cluster: str, start: set[str], *, timeout: float
) -> set[str]:
    """Report replicas as they leave until none is left, or `timeout` (0: no limit) passes;
    returns those still there."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + timeout if timeout else None
    seen, left = set(start), set(start)
    columns = (
        TextColumn(f"draining {cluster}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} moved"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("drain", total=len(seen))
        while left and (deadline is None or time.monotonic() < deadline):
            time.sleep(POLL_SECONDS)
            now_on = _replicas_on(client, cluster)
            for gone in sorted(left - now_on):
                progress.console.print(f"replica {gone} moved off")
            seen |= now_on  # a replica bound there as the cordon landed moves too
            left = now_on
            progress.update(task, completed=len(seen - left), total=len(seen))
    return left


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
