"""``explain``, ``schema`` and ``version``: what the API accepts, answered without a server."""

from __future__ import annotations

import json
from typing import Annotated

import typer

import inferplane
from inferplane.api import explain as api_explain
from inferplane.api import registry
from inferplane.api import schema as api_schema
from inferplane.cli import errors, options


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Reference")(explain)
    app.command(rich_help_panel="Reference")(schema)
    app.command(rich_help_panel="Settings")(version)


def explain(
    path: Annotated[
        str,
        typer.Argument(
            help="A kind, or a dotted path into it: deployment, deployment.spec.autoscaling.",
            show_default=False,
        ),
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", help="Show every field below the path, not one level.")
    ] = False,
) -> None:
    """Describe a kind or one of its fields: type, default and what it means.

    Examples:

    inferplane explain deployment
    inferplane explain deploy.spec.placement --recursive
    """
    with errors.reported():
        typer.echo(api_explain.explain(path, recursive=recursive).rstrip("\n"))


def schema(kind: options.Kind) -> None:
    """Print the JSON Schema of a kind, for editors and validators.

    Examples:

    inferplane schema deployment > deployment.schema.json
    inferplane schema svc
    """
    with errors.reported():
        info = registry.lookup(kind)
        typer.echo(json.dumps(api_schema.json_schema(info.kind), indent=2))


def version() -> None:
    """Print the version of this inferplane.

    Example:

    inferplane version
    """
    typer.echo(f"inferplane {inferplane.__version__}")
