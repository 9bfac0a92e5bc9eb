"""Who used the machine's CPU: this bench's whole process tree (the control plane, gateway,
agents and their engines, the load generator) against the machine, from /proc (Linux). The
difference is someone else's load, which shows when a run shares the cores."""

from __future__ import annotations

import os
from pathlib import Path

from bench.servers import machine_busy_seconds

_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """pid → (ppid, CPU seconds of it and of the children it has reaped)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
        found[int(stat.parent.name)] = (int(fields[1]), ticks / _TICKS)
    return found


def tree_seconds(root: int | None = None) -> float:
    """CPU seconds of `root` (this process) and every descendant, alive or reaped."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root or os.getpid()]
    while todo:
        pid = todo.pop()
        total += processes.get(pid, (0, 0.0))[1]
        todo += children.get(pid, [])
    return total


def machine_seconds() -> float:
    """CPU seconds all cores have been busy since boot."""
    return machine_busy_seconds()
