"""``describe``: one object for people, with the events that explain its state.

The layout follows ``kubectl describe``: aligned metadata fields, then spec and status as
indented YAML, a conditions table, and the object's events, oldest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
import yaml

from inferplane import client as api_client
from inferplane.api import registry
from inferplane.cli import columns, errors, listing, options, output, session

Object = dict[str, Any]
LABEL_WIDTH = 20
INDENT = "  "


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Objects")(describe)


def describe(
    ctx: typer.Context,
    kind: options.Kind,
    name: Annotated[str, typer.Argument(help="Name of the object.", show_default=False)],
    namespace: options.Namespace = None,
) -> None:
    """Show one object in detail: metadata, spec, status, conditions and its events.

    Examples:

    inferplane describe deployment chat
    inferplane describe rep chat-7f9c2 -n team-a
    inferplane describe cluster eu-west-1
    """
    with errors.reported(), session.of(ctx).client() as client:
        info = registry.lookup(kind)
        obj = client.get(info.kind, name, namespace=namespace)
        events = events_for(client, info, obj)
        typer.echo(render(obj, events, now=listing.utcnow()), nl=False)


def events_for(client: api_client.Client, info: registry.KindInfo, obj: Object) -> list[Object]:
    """The events about this object, oldest first; fleet-scoped objects' events may be anywhere."""
    selector = (
        f"spec.involvedObject.kind={info.kind},spec.involvedObject.name={output.name_of(obj)}"
    )
    scope = output.namespace_of(obj) or None
    items = client.list("Event", namespace=scope, field_selector=selector).items
    return sorted(items, key=columns.by_last_seen)


def render(obj: Object, events: list[Object], *, now: datetime) -> str:
    lines = [
        *_metadata(obj, now),
        *_yaml_block("Spec", obj.get("spec")),
        *_yaml_block("Status", _without(obj.get("status"), "conditions", "autoscaling")),
        *_autoscaling(obj, now),
        *_conditions(obj, now),
        *_events(events, now),
    ]
    return "".join(line + "\n" for line in lines)


def _metadata(obj: Object, now: datetime) -> list[str]:
    meta = obj.get("metadata") or {}
    created = meta.get("creationTimestamp")
    fields: list[tuple[str, list[str]]] = [
        ("Name", [str(meta.get("name", ""))]),
        ("Namespace", [str(meta["namespace"])] if meta.get("namespace") else []),
        ("Kind", [str(obj.get("kind", ""))]),
        ("Labels", _pairs(meta.get("labels"))),
        ("Annotations", _pairs(meta.get("annotations"))),
        ("Created", [f"{created} ({output.age(created, now)} ago)"] if created else []),
        ("Generation", [str(meta.get("generation", output.NONE))]),
        ("Resource Version", [str(meta.get("resourceVersion", output.NONE))]),
        ("UID", [str(meta.get("uid", output.NONE))]),
        ("Owners", [_owner(ref) for ref in meta.get("ownerReferences") or []]),
        ("Finalizers", [str(f) for f in meta.get("finalizers") or []]),
    ]
    if meta.get("deletionTimestamp"):
        fields.append(("Deleting Since", [str(meta["deletionTimestamp"])]))
    return [line for label, values in fields for line in _field(label, values)]


def _field(label: str, values: list[str]) -> list[str]:
    """``Label:   first`` with further values aligned under the first one."""
    first, *rest = values or [output.NONE]
    head = f"{label + ':':<{LABEL_WIDTH}}{first}"
    return [head, *(" " * LABEL_WIDTH + value for value in rest)]


def _pairs(mapping: Any) -> list[str]:
    return [f"{key}={value}" for key, value in (mapping or {}).items()]


def _owner(ref: Object) -> str:
    controller = " (controller)" if ref.get("controller") else ""
    return f"{ref.get('kind')}/{ref.get('name')}{controller}"


def _without(mapping: Any, *keys: str) -> Object:
    return {k: v for k, v in (mapping or {}).items() if k not in keys}


def _yaml_block(title: str, body: Any) -> list[str]:
    if not body:
        return [f"{title}:{' ' * (LABEL_WIDTH - len(title) - 1)}{output.NONE}"]
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
    return [f"{title}:", *(INDENT + line for line in text.splitlines())]


def _autoscaling(obj: Object, now: datetime) -> list[str]:
    """The autoscaler's last look, in words (status.autoscaling), for an autoscaled object."""
    seen = (obj.get("status") or {}).get("autoscaling")
    if not isinstance(seen, dict):
        return []
    metric, value, target = seen.get("metric", ""), seen.get("value", 0), seen.get("target", 0)
    lines = [
        f"{seen.get('mode', 'stable')} mode: {metric} {value:g} per replica, target {target:g}",
        f"desired {seen.get('desiredReplicas', 0)}: {seen.get('reason', '')}",
    ]
    if seen.get("lastScaleReason"):
        when = output.age(seen.get("lastScaleTime"), now)
        lines.append(f"last scaled {when} ago: {seen['lastScaleReason']}")
    if seen.get("coldStartSeconds") is not None:
        lines.append(f"cold start (created to Ready): {seen['coldStartSeconds']:g} s")
    return _field("Autoscaling", lines)


def _conditions(obj: Object, now: datetime) -> list[str]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    if not conditions:
        return _field("Conditions", [])
    table = output.Table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"])
    rows = [
        [
            str(c.get("type", "")),
            str(c.get("status", "")),
            str(c.get("reason") or ""),
            output.age(c.get("lastTransitionTime"), now),
            str(c.get("message") or ""),
        ]
        for c in conditions
    ]
    return ["Conditions:", *_indented(table.render(rows))]


def _events(events: list[Object], now: datetime) -> list[str]:
    if not events:
        return _field("Events", [])
    table = output.Table(["LAST SEEN", "TYPE", "REASON", "COUNT", "FROM", "MESSAGE"])
    rows = [
        [
            output.age(columns.last_seen(e), now),
            str(columns.dig(e, "spec.type") or ""),
            str(columns.dig(e, "spec.reason") or ""),
            str(columns.dig(e, "spec.count") or 1),
            str(columns.dig(e, "spec.source.component") or ""),
            str(columns.dig(e, "spec.message") or ""),
        ]
        for e in events
    ]
    return ["Events:", *_indented(table.render(rows))]


def _indented(text: str) -> list[str]:
    return [INDENT + line for line in text.splitlines()]
