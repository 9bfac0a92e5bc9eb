"""``schedule --dry-run``: where each replica of a deployment would land, and why.

Reads the fleet (Clusters, Pools with their allocations, ModelCaches, and the bound replicas
of the deployments in question) from the control plane, builds the scheduler's snapshot as
the scheduling controller does (`policy.placement.snapshots`), and runs the control plane's
own scheduler on it locally, replica after replica, so the second replica sees the devices
the first one took. Nothing is written.
"""

from __future__ import annotations

from typing import Annotated

import typer

from inferplane import client as api_client
from inferplane.api import deployments, validation
from inferplane.api import errors as api_errors
from inferplane.cli import errors, manifests, options, output, session
from inferplane.policy import devices
from inferplane.policy.placement import decisions, demands, scheduler, snapshots, state

HEADERS = ["REPLICA", "CLUSTER", "POOL", "NODES", "DEVICES", "WHY"]
UNSCHEDULABLE = 1
"""Exit code when a replica fits nowhere (the table and the reasons are still printed)."""


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Objects")(schedule)


def schedule(
    ctx: typer.Context,
    filenames: options.Filenames,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Required: say where replicas would go; binding is the control plane's job.",
        ),
    ] = False,
    namespace: options.Namespace = None,
    recursive: options.Recursive = False,
) -> None:
    """Show where each replica of the Deployments in the files would be placed, and why.

    The fleet is read from the control plane; the scheduler runs here on that snapshot, one
    replica after another (spec.replicas of each), with the deployment's cluster selector,
    device requests (CEL selectors), price cap and strategy. A replica that fits nowhere gets
    the reasons per cluster. Exit code 1 when any replica is unschedulable.

    Examples:

    inferplane schedule --dry-run -f deployment.yaml
    inferplane schedule --dry-run -f manifests/ -R -n team-a
    """
    with errors.reported(), session.of(ctx).client() as client:
        if not dry_run:
            raise errors.UsageError("only --dry-run is supported: the control plane binds replicas")
        found = _deployments(
            filenames, recursive=recursive, namespace=namespace, default=client.namespace
        )
        planner = scheduler.Scheduler(_snapshot(client, found))
        rows: list[list[str]] = []
        failed: list[decisions.Unschedulable] = []
        for deployment in found:
            for decision in _place(planner, deployment):
                rows.append(_row(decision))
                if isinstance(decision, decisions.Unschedulable):
                    failed.append(decision)
    if not rows:
        typer.echo("no replicas to place (spec.replicas is 0)")
        return
    output.Table(HEADERS).print(rows)
    _explain(failed)
    if failed:
        raise typer.Exit(UNSCHEDULABLE)


def _deployments(
    filenames: list[str], *, recursive: bool, namespace: str | None, default: str
) -> list[deployments.Deployment]:
    """The Deployments in the files, validated as admission would, selectors compiled."""
    found: list[deployments.Deployment] = []

    def read(manifest: manifests.Manifest) -> None:
        obj = manifests.in_namespace(manifest.object, namespace)
        if obj.get("kind") != "Deployment":
            return
        metadata = {**(obj.get("metadata") or {})}
        metadata["namespace"] = metadata.get("namespace") or default
        name = str(metadata.get("name", ""))
        doc = {**obj, "metadata": metadata}
        parsed = validation.validate(deployments.Deployment, doc, kind="Deployment", name=name)
        _check_selectors(parsed)
        found.append(parsed)

    if not manifests.each(filenames, recursive=recursive, action=read):
        raise typer.Exit(errors.EXIT_FAILURE)
    if not found:
        raise errors.UsageError(f"no Deployment found in {', '.join(filenames)}")
    return found


def _check_selectors(deployment: deployments.Deployment) -> None:
    causes = devices.selector_causes(deployment.spec.resources.devices)
    if causes:
        raise api_errors.ValidationFailure(causes, kind="Deployment", name=deployment.metadata.name)


def _snapshot(client: api_client.Client, found: list[deployments.Deployment]) -> state.Snapshot:
    """The fleet as the control plane has it now, as the scheduler would see it."""
    owners = {(d.metadata.namespace or "default", d.metadata.name) for d in found}
    bound = [
        replica
        for namespace in sorted({ns for ns, _ in owners})
        for replica in client.list("Replica", namespace=namespace).items
    ]
    return snapshots.snapshot_of(
        client.list("Cluster").items,
        client.list("Pool").items,
        client.list("ModelCache").items,
        bound,
        deployments=owners,
    )


def _place(
    planner: scheduler.Scheduler, deployment: deployments.Deployment
) -> list[decisions.Decision]:
    name = deployment.metadata.name
    return [
        planner.place(demands.demand_for(deployment, f"{name}-{i}"))
        for i in range(deployment.spec.replicas)
    ]


def _row(decision: decisions.Decision) -> list[str]:
    if isinstance(decision, decisions.Unschedulable):
        return [decision.replica, "-", "-", "-", "-", "unschedulable (reasons below)"]
    binding = decision.binding
    nodes = ",".join(str(n) for n in binding.nodes)
    slots = [f"{s.group}[{','.join(map(str, s.indexes))}]" for s in binding.devices]
    if len(binding.nodes) > 1:
        slots = [f"n{s.node}:{text}" for s, text in zip(binding.devices, slots, strict=True)]
    return [
        decision.replica,
        binding.cluster,
        binding.pool,
        nodes,
        " ".join(slots) or "-",
        decision.why,
    ]


def _explain(failed: list[decisions.Unschedulable]) -> None:
    if failed:
        typer.echo("")
    for decision in failed:
        typer.echo(f"{decision.replica}: {decision.message}")
        for error in decision.errors:
            typer.echo(f"  selector error: {error}")
