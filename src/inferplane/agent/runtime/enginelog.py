"""What a runtime says of an engine that ended: how it exited, and the last line it logged.

Every runtime keeps an engine's output in a log file the agent can read, starting each run
with a line of its own (AGENT_MARK); the last line the engine itself wrote usually says why
it stopped, and goes in the replica's status message.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from pathlib import Path

from inferplane.agent.runtime import processes

AGENT_MARK = "--- inferplane agent:"
"""How the lines a runtime writes into an engine's log begin."""
TAIL_BYTES = 4096
"""How much of the log's end is read for its last line."""


def describe_exit(code: int) -> str:
    """An exit status (negative: the signal that ended it) in words."""
    if code == processes.UNKNOWN_EXIT:
        return "engine exited"
    if code < 0:
        try:
            return f"engine killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"engine killed by signal {-code}"
    return f"engine exited with code {code}"


def last_line(path: Path, *, skip: Iterable[str] = ()) -> str:
    """The engine's last log line (at most 300 characters), leaving out the runtime's own
    lines and those starting with a prefix in `skip`; '' if there is none."""
    try:
        with path.open("rb") as file:
            file.seek(max(os.fstat(file.fileno()).st_size - TAIL_BYTES, 0))
            tail = file.read().decode(errors="replace")
    except OSError:
        return ""
    ours = (AGENT_MARK, *skip)
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(ours)]
    return lines[-1][:300] if lines else ""
