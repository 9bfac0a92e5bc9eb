"""``audit``: the control plane's audit trail — every write and every denied call, who made it,
from where, and what it answered (docs/security-audit.md)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from inferplane.cli import errors, output, session
from inferplane.cli.apikey import parse_duration

Record = dict[str, Any]
HEADERS = ["TIME", "USER", "SOURCE", "VERB", "RESOURCE", "NAMESPACE", "NAME", "CODE", "VERSION"]


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Settings")(audit)


def parse_since(text: str) -> datetime:
    """``1h``, ``7d``, ``1w2d`` ago, or an RFC 3339 time."""
    try:
        return datetime.now(UTC) - parse_duration(text)
    except typer.BadParameter:
        pass
    moment = output.parse_time(text)
    if moment is None:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (1h, 7d) nor an RFC 3339 time (2025-01-31T12:00:00Z)"
        )
    return moment


def audit(
    ctx: typer.Context,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_since,
            metavar="DURATION|TIME",
            help="Only records from this long ago (1h, 7d) or this RFC 3339 time on.",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            help="Only calls by this principal, as the USER column shows it "
            "(apikey:NAMESPACE/NAME, anonymous).",
            show_default=False,
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Only calls on this kind (deployment, deploy, secrets…).", show_default=False
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Only calls in this namespace; default: every namespace.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="Show the newest this many records.")
    ] = 500,
    output_format: Annotated[
        Format, typer.Option("--output", "-o", help="table, json (one list) or yaml.")
    ] = Format.table,
) -> None:
    """Show the audit trail, oldest first: every write and every denied (401, 403, 429) call.

    Fleet admins only. What is kept of each call (nothing, its metadata, or its body too) is
    the control plane's --audit-level and --audit-policy; records older than its
    --audit-retention are gone.

    Examples:

    inferplane audit --since 1h
    inferplane audit --user apikey:team-a/ci-bot --kind deployment
    inferplane audit -n team-a --since 2025-01-31T00:00:00Z -o json
    """
    with errors.reported(), session.of(ctx).client() as client:
        records = client.audit(since=since, user=user, kind=kind, namespace=namespace, limit=limit)
    if output_format is Format.json:
        listing = {"apiVersion": "inferplane.dev/v1", "kind": "AuditRecordList", "items": records}
        sys.stdout.write(output.to_json(listing))
    elif output_format is Format.yaml:
        sys.stdout.write(output.to_yaml(records))
    elif not records:
        typer.echo("No audit records found.", err=True)
    else:
        output.Table(HEADERS).print([row(record) for record in records])


def row(record: Record) -> list[str]:
    stamp = output.parse_time(record.get("time"))
    shown = stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else output.NONE
    kind, sub = record.get("kind") or "", record.get("subresource") or ""
    resource = f"{kind}/{sub}" if kind and sub else kind or record.get("path") or output.NONE
    return [
        shown,
        str(record.get("user") or output.NONE),
        str(record.get("sourceAddress") or output.NONE),
        str(record.get("verb") or ""),
        resource,
        str(record.get("namespace") or output.NONE),
        str(record.get("name") or output.NONE),
        str(record.get("code") or ""),
        str(record.get("resourceVersion") or output.NONE),
    ]
