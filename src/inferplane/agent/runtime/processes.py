"""The one wrapper around operating-system processes the process runtime uses.

Each engine runs in a process group of its own (`start_new_session`), so a signal reaches the
engine and every process it spawned (vLLM's workers, say) and never the agent's terminal.
On Linux an engine may also be told to die with the agent (`PR_SET_PDEATHSIG`): an agent
that is killed outright then leaves no orphans behind.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from inferplane import lifeline

UNKNOWN_EXIT = -255
"""The exit code reported for an adopted process, whose real code only its parent sees."""


class Handle(Protocol):
    """A running engine process, started here or adopted from an earlier agent."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """The exit code once the process has exited, else None."""

    def signal_group(self, sig: int) -> None:
        """Send `sig` to the engine's whole process group; nothing if it is gone."""


@dataclass
class Child:
    """A process this agent started."""

    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def signal_group(self, sig: int) -> None:
        _signal_group(self.process.pid, sig)


@dataclass
class Adopted:
    """A process an earlier agent started and left running; it is not our child."""

    pid: int
    start_ticks: int | None

    def poll(self) -> int | None:
        return None if is_running(self.pid, self.start_ticks) else UNKNOWN_EXIT

    def signal_group(self, sig: int) -> None:
        if is_running(self.pid, self.start_ticks):
            _signal_group(self.pid, sig)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    log: IO[bytes],
    cwd: Path,
    die_with_agent: bool,
) -> Child:
    """Start `argv` in a new session, stdout and stderr to `log`; raises OSError if it cannot."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=lifeline.die_with(os.getpid()) if die_with_agent else None,
    )
    return Child(process)


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (Linux); tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22, counted after the command name, which is in parentheses and may hold spaces.
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def is_running(pid: int, ticks: int | None) -> bool:
    """Whether `pid` is alive, not a zombie, and (when known) the same process as before."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _is_zombie(pid):
        return False
    return ticks is None or start_ticks(pid) in (None, ticks)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def free_port(host: str) -> int:
    """A port nothing listens on now at `host` (the kernel's pick)."""
    with socket.socket(_family(host)) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(_family(host)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
