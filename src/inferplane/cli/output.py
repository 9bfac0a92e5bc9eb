"""Rendering objects for people and pipes: kubectl-style tables, YAML, JSON and kind/name.

Tables have no borders, three spaces between columns and are never truncated or wrapped, so
``inferplane get deploy | awk ...`` sees whole values; a terminal wraps long lines itself.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from inferplane.api import yamlio

NONE = "<none>"
UNLIMITED_WIDTH = 1_000_000
STYLES = {
    "Ready": "green",
    "Running": "green",
    "True": "green",
    "Normal": "green",
    "Pending": "yellow",
    "Unknown": "yellow",
    "Warning": "yellow",
    "Failed": "red",
    "NotReady": "red",
    "False": "red",
}
"""Colours for well-known values, used only on a terminal."""


class Table:
    """Rows under fixed headers; remembers column widths so a watch's later rows line up."""

    def __init__(self, headers: list[str]) -> None:
        self.headers = headers
        self.widths = [len(h) for h in headers]

    def render(self, rows: list[list[str]], *, header: bool = True) -> str:
        for row in rows:
            self.widths = [max(w, len(cell)) for w, cell in zip(self.widths, row, strict=True)]
        table = RichTable(
            box=None, show_header=header, padding=(0, 3, 0, 0), pad_edge=False, header_style="bold"
        )
        for title, width in zip(self.headers, self.widths, strict=True):
            table.add_column(title, min_width=width, no_wrap=True, overflow="ignore")
        for row in rows:
            table.add_row(*(Text(cell, style=STYLES.get(cell, "")) for cell in row))
        return _render(table)

    def print(self, rows: list[list[str]], *, header: bool = True) -> None:
        sys.stdout.write(self.render(rows, header=header))
        sys.stdout.flush()


def _render(renderable: RichTable) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=UNLIMITED_WIDTH,
        force_terminal=sys.stdout.isatty(),
        highlight=False,
        soft_wrap=False,
    )
    console.print(renderable)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def ref(obj: dict[str, Any]) -> str:
    """``deployment/chat``: how kubectl names an object in messages."""
    return f"{str(obj.get('kind', '')).lower()}/{name_of(obj)}"


def name_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def namespace_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def to_yaml(objs: list[dict[str, Any]]) -> str:
    return yamlio.dump_documents(objs)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"


def as_list(items: list[dict[str, Any]], resource_version: str = "") -> dict[str, Any]:
    """The JSON shape of several objects; ``apply -f`` accepts it back."""
    metadata = {"resourceVersion": resource_version} if resource_version else {}
    return {"apiVersion": "inferplane.dev/v1", "kind": "List", "metadata": metadata, "items": items}


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def age(value: Any, now: datetime) -> str:
    """How long ago a timestamp was, as kubectl prints it: 45s, 5m30s, 3h, 2d4h, 1y30d."""
    stamp = parse_time(value)
    if stamp is None:
        return NONE
    return human_duration((now - stamp).total_seconds())


def human_duration(seconds: float) -> str:
    """Coarser the longer ago: precision nobody reads is noise in a table."""
    total = max(0, int(seconds))
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 120:
        return f"{total}s"
    if minutes < 10:
        return _pair(minutes, "m", total % 60, "s")
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return _pair(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    return _pair(days // 365, "y", days % 365, "d") if days < 365 * 8 else f"{days // 365}y"


def _pair(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"
