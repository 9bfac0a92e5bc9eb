"""Options shared by several commands, declared once so flags and help read the same everywhere."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from inferplane.api import registry
from inferplane.cli import errors


class OutputFormat(StrEnum):
    yaml = "yaml"
    json = "json"
    wide = "wide"
    name = "name"


Kind = Annotated[
    str,
    typer.Argument(
        help="Kind of object: its name, plural or short name (deployment, deployments, deploy).",
        show_default=False,
    ),
]
Namespace = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Namespace to work in; defaults to the context's namespace ('default').",
        show_default=False,
    ),
]
AllNamespaces = Annotated[
    bool,
    typer.Option("--all-namespaces", "-A", help="Read every namespace the token may read."),
]
Output = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format: yaml, json, wide (a table with more columns) or name (kind/name).",
        show_default=False,
    ),
]
LabelSelector = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        help="Label selector, e.g. 'app=chat,tier!=dev,env in (a,b)'.",
        show_default=False,
    ),
]
FieldSelector = Annotated[
    str | None,
    typer.Option(
        "--field-selector",
        help="Field selector on dotted paths, e.g. 'spec.cluster=eu-1,metadata.name!=x'.",
        show_default=False,
    ),
]
Watch = Annotated[
    bool,
    typer.Option("--watch", "-w", help="After listing, keep printing changes as they happen."),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Let the server check and answer as if it wrote; nothing is stored."
    ),
]
Filenames = Annotated[
    list[str],
    typer.Option(
        "--filename",
        "-f",
        help="A YAML or JSON file, a directory of them, or '-' for stdin; repeatable.",
        metavar="PATH",
        show_default=False,
    ),
]
Recursive = Annotated[
    bool,
    typer.Option("--recursive", "-R", help="With a directory, read its subdirectories too."),
]


def scope(
    info: registry.KindInfo, namespace: str | None, all_namespaces: bool, default: str
) -> str | None:
    """The namespace a listing reads: None for every namespace and for fleet-scoped kinds."""
    if namespace and all_namespaces:
        raise errors.UsageError("give either --namespace or --all-namespaces, not both")
    if not info.namespaced or all_namespaces:
        return None
    return namespace or default


ControlUrl = Annotated[
    str, typer.Option("--control", envvar="INFERPLANE_SERVER", help="URL of the control plane.")
]
"""Where a long-running process (agent, gateway) finds the control plane."""

FleetToken = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="INFERPLANE_TOKEN",
        help="Token of a fleet-admin API key. Default on a loopback control plane: the admin "
        "token it wrote in $INFERPLANE_DATA_DIR.",
        show_default=False,
    ),
]
"""The identity of a long-running process that reads or writes across namespaces."""
