"""The process runtime's state file: which engines run under which pid, so that an agent
restarted with the same data dir adopts them instead of starting them again."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inferplane.agent.runtime.base import Launch

VERSION = 1


@dataclass(frozen=True)
class Record:
    """One engine as the state file keeps it."""

    launch: Launch
    port: int
    pid: int | None
    """The running process, or None when it was waiting to be (re)started."""
    ticks: int | None
    """The process's start time in clock ticks, to tell a reused pid apart."""
    restarts: int
    started: str | None
    """When the process started, RFC 3339."""
    stopping: bool

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["launch"] = self.launch.to_dict()
        return raw


def load(path: Path) -> dict[str, Record]:
    """The records in `path`; a missing or unreadable file is an empty state."""
    try:
        raw = json.loads(path.read_text())
        engines = raw["engines"] if raw.get("version") == VERSION else {}
        return {name: _record(entry) for name, entry in engines.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _record(entry: dict[str, Any]) -> Record:
    return Record(
        launch=Launch.from_dict(entry["launch"]),
        port=int(entry["port"]),
        pid=entry.get("pid"),
        ticks=entry.get("ticks"),
        restarts=int(entry.get("restarts") or 0),
        started=entry.get("started"),
        stopping=bool(entry.get("stopping")),
    )


def save(path: Path, records: dict[str, Record]) -> None:
    """Write atomically: a crash mid-write leaves the previous file."""
    body = {"version": VERSION, "engines": {n: r.to_dict() for n, r in records.items()}}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(body, indent=2, sort_keys=True))
    os.replace(temporary, path)
