"""Listing objects and following their changes, in any output format: what get and events share.

A Printer keeps the table it started with, so rows printed by a watch line up under the
headers of the first listing, as with ``kubectl get -w``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import typer

from inferplane import client as api_client
from inferplane import informer
from inferplane.api import registry
from inferplane.cli import columns, output
from inferplane.cli.options import OutputFormat

Object = dict[str, Any]
EXIT_INTERRUPTED = 130


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Query:
    """Which objects: a kind, a namespace (None: all, or fleet-scoped) and selectors."""

    info: registry.KindInfo
    namespace: str | None
    label_selector: str | None = None
    field_selector: str | None = None


@dataclass
class Printer:
    """Prints objects of one kind in one format; tables keep their widths across calls."""

    info: registry.KindInfo
    format: OutputFormat | None = None
    all_namespaces: bool = False
    clock: Callable[[], datetime] = utcnow
    _table: output.Table | None = field(default=None, init=False)

    def one(self, obj: Object) -> None:
        """A single object asked for by name: JSON as the object itself, not a List."""
        if self.format is OutputFormat.json:
            sys.stdout.write(output.to_json(obj))
        else:
            self.objects([obj])

    def objects(self, items: list[Object], *, resource_version: str = "") -> None:
        """A whole listing: tables with headers, YAML as documents, JSON as one List."""
        if self.format is OutputFormat.json:
            sys.stdout.write(output.to_json(output.as_list(items, resource_version)))
        elif self.format is OutputFormat.yaml:
            sys.stdout.write(output.to_yaml(items))
        else:
            self._rows(items, header=True)

    def change(self, obj: Object) -> None:
        """One object that changed during a watch: a row, a name, or a document."""
        if self.format is OutputFormat.json:
            sys.stdout.write(output.to_json(obj))
        elif self.format is OutputFormat.yaml:
            sys.stdout.write("---\n" + output.to_yaml([obj]))
        else:
            self._rows([obj], header=self._table is None)
        sys.stdout.flush()

    def _rows(self, items: list[Object], *, header: bool) -> None:
        if self.format is OutputFormat.name:
            typer.echo("".join(f"{output.ref(obj)}\n" for obj in items), nl=False)
            return
        wide = self.format is OutputFormat.wide
        if self._table is None:
            names = columns.headers(self.info, wide=wide, all_namespaces=self.all_namespaces)
            self._table = output.Table(names)
        now = self.clock()
        rows = [
            columns.row(obj, self.info, wide=wide, all_namespaces=self.all_namespaces, now=now)
            for obj in items
        ]
        self._table.print(rows, header=header)


def show(
    client: api_client.Client,
    query: Query,
    printer: Printer,
    *,
    watch: bool = False,
    order: Callable[[Object], Any] | None = None,
) -> None:
    """List, print, then (with ``watch``) print every change from the list's version on."""
    listing = client.list(
        query.info.kind,
        namespace=query.namespace,
        label_selector=query.label_selector,
        field_selector=query.field_selector,
    )
    items = sorted(listing.items, key=order) if order else listing.items
    if items or printer.format is OutputFormat.json:
        printer.objects(items, resource_version=listing.resource_version)
    else:
        typer.echo(_nothing_found(query), err=True)
    if watch:
        follow(client, query, printer, listing.resource_version)


def follow(
    client: api_client.Client, query: Query, printer: Printer, resource_version: str
) -> None:
    """Print changes until Ctrl-C, riding out disconnects and control-plane restarts."""
    events = informer.follow(
        client,
        query.info.kind,
        namespace=query.namespace,
        resource_version=resource_version or None,
        label_selector=query.label_selector,
        field_selector=query.field_selector,
    )
    try:
        for event in events:
            if event.type == "RESYNC":
                for obj in event.object["items"]:
                    printer.change(obj)
            else:
                printer.change(event.object)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _nothing_found(query: Query) -> str:
    if query.namespace:
        return f"No resources found in {query.namespace} namespace."
    return "No resources found."


def and_selector(*terms: str | None) -> str | None:
    """Join selector terms with commas (AND), skipping empty ones."""
    joined = ",".join(term for term in terms if term)
    return joined or None
