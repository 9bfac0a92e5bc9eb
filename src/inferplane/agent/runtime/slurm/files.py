"""The files a replica's job shares with the agent through the data dir: the token it reads,
the address it writes, the log it appends to. The data dir must be on a filesystem the
compute nodes mount at the same path (as home directories and Slurm's own spool usually are).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from inferplane.agent.runtime import enginelog
from inferplane.agent.runtime.slurm.script import JobFiles

AGENT_MARK = enginelog.AGENT_MARK
"""Lines the agent writes into an engine's log (as the process runtime does)."""
SLURM_NOISE = ("srun: ", "slurmstepd")
"""Lines Slurm itself writes into the job's output; the engine's last words are before them."""


def write_token(path: Path, token: str) -> None:
    """The token, readable by this user only: the file is made 0600 before a byte is in it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    remove(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def forget(files: JobFiles) -> None:
    """A job of the replica ended: its token and address go (the log and script stay)."""
    remove(files.token)
    remove(files.address)


def read_address(path: Path, *, job_id: str, restarts: int) -> tuple[str, int] | None:
    """(host, port) the job's current run wrote, or None while it has not (or the file is a
    leftover of an earlier run)."""
    try:
        words = path.read_text().split()
    except OSError:
        return None
    if len(words) != 4 or words[0] != job_id or words[1] != str(restarts):
        return None
    try:
        port = int(words[3])
    except ValueError:
        return None
    return (words[2], port) if 0 < port < 65536 else None


def mark(path: Path, line: str) -> None:
    """Append an agent line to the engine's log, e.g. where a restart begins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as file:
        file.write(f"{AGENT_MARK} {line} ---\n".encode())


def last_line(path: Path) -> str:
    """The engine's last log line, without the agent's lines nor Slurm's own."""
    return enginelog.last_line(path, skip=SLURM_NOISE)
