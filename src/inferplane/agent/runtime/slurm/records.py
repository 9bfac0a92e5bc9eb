"""The slurm runtime's state file: which replica runs as which job, so that an agent
restarted on the same data dir adopts its jobs (and their restart counts) instead of
submitting them again."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferplane.agent.runtime import base

VERSION = 1


@dataclass(frozen=True)
class Record:
    """One replica's job as the state file keeps it."""

    launch: base.Launch
    """Without its token, which only the agent's memory holds."""
    job_id: str | None
    """The job submitted last, or None while a resubmission waits for its backoff."""
    restarts: int
    started: str | None
    """When its engine last started running, RFC 3339."""
    stop_by: str | None
    """While it is being stopped: when it is cancelled if it has not drained, RFC 3339."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "launch": self.launch.to_dict(),
            "job_id": self.job_id,
            "restarts": self.restarts,
            "started": self.started,
            "stop_by": self.stop_by,
        }


def load(path: Path) -> dict[str, Record]:
    """The records in `path`; a missing or unreadable file is an empty state."""
    try:
        raw = json.loads(path.read_text())
        jobs = raw["jobs"] if raw.get("version") == VERSION else {}
        return {name: _record(entry) for name, entry in jobs.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _record(entry: dict[str, Any]) -> Record:
    job_id = entry.get("job_id")
    return Record(
        launch=base.Launch.from_dict(entry["launch"]),
        job_id=str(job_id) if job_id else None,
        restarts=int(entry.get("restarts") or 0),
        started=entry.get("started"),
        stop_by=entry.get("stop_by"),
    )


def save(path: Path, records: dict[str, Record]) -> None:
    """Write atomically: a crash mid-write leaves the previous file."""
    body = {"version": VERSION, "jobs": {n: r.to_dict() for n, r in records.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(body, indent=2, sort_keys=True))
    os.replace(temporary, path)
